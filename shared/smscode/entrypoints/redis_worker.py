"""`smscode worker` on a Redis broker: Celery's `smscode.deliver` tasks, many per round trip.

The stock Celery worker spends most of its CPU on each task's bookkeeping (a BRPOP, a
MULTI/ZADD/HSET/EXEC on receipt and another on ack, request and trace objects) in its one
consumer thread, which capped it near 600 tasks/s per core for tasks that do nothing
(bench/README.md). This loop keeps the same messages and the same broker records
(`adapters.redis_queue`) and does what the worker did for our one task, in batches:

- one script call per turn acknowledges the finished tasks and takes as many new ones as
  there are idle threads (WORKER_CONCURRENCY); a task is acknowledged once its delivery has
  an outcome, as with `task_acks_late`;
- a RETRY waits here for its backoff (as a Celery retry's ETA task waits in a worker), kept
  visible on the broker meanwhile; an `eta` set by a stock worker's retry is honoured;
- the unacknowledged tasks of a dead worker are put back after the visibility timeout, and
  the outbox sweeper queues again whatever the broker lost;
- SIGTERM or SIGINT: take nothing more, finish the deliveries under way, hand waiting
  retries back to the queue; a second signal exits at once (the broker keeps the rest).

A stock Celery worker still consumes every message (`smscode worker --celery`; on RabbitMQ
`smscode worker` is always the stock one).
"""

from __future__ import annotations

import base64
import gc
import heapq
import itertools
import json
import logging
import os
import queue
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from types import FrameType

from smscode.adapters.publishers.celery import TASK_NAME
from smscode.adapters.publishers.celery_wire import redis_envelope, task_message
from smscode.adapters.redis_queue import RedisQueue, Taken, restore_interval
from smscode.domain.outcomes import Outcome
from smscode.entrypoints.intake import deliver_all
from smscode.entrypoints.outbox_sweeper import sweep_outbox
from smscode.service_layer.deliver import backoff_seconds
from smscode.settings import Settings

log = logging.getLogger("smscode.worker")


@dataclass(order=True)
class Task:
    """A taken task; ordered by when it may run (now, or after its ETA or retry backoff)."""

    due: float
    seq: int
    tag: str = field(compare=False)
    payload: str = field(compare=False)
    retries: int = field(compare=False)


def parse_task(taken: Taken, seq: int) -> Task:
    """The delivery task in a kombu envelope; ValueError (or KeyError...) if it is not one."""
    envelope = json.loads(taken.envelope)
    headers = envelope["headers"]
    if headers.get("task") != TASK_NAME:
        raise ValueError(f"not a {TASK_NAME} task")
    body = envelope["body"]
    if envelope["properties"].get("body_encoding") == "base64":
        body = base64.b64decode(body)
    args, _kwargs, _embed = json.loads(body)
    [payload] = args
    eta = headers.get("eta")
    due = datetime.fromisoformat(eta).timestamp() if eta else 0.0
    return Task(due, seq, taken.tag, str(payload), int(headers.get("retries") or 0))


class _Pool:
    """WORKER_CONCURRENCY threads delivering tasks; each outcome goes to `done`."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.busy = 0
        self.done: queue.SimpleQueue[tuple[Task, Outcome]] = queue.SimpleQueue()
        self._work: queue.SimpleQueue[Task | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._run, name=f"smscode-deliver-{n}", daemon=True)
            for n in range(size)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, task: Task) -> None:
        self.busy += 1
        self._work.put(task)

    def _run(self) -> None:
        while (task := self._work.get()) is not None:
            [outcome] = deliver_all([task.payload])
            self.done.put((task, outcome))

    def close(self) -> None:
        for _ in self._threads:
            self._work.put(None)


class Worker:
    """The loop: acknowledge, take, deliver on the pool, retry after a backoff."""

    def __init__(self, settings: Settings, broker: RedisQueue) -> None:
        self._settings = settings
        self._broker = broker
        self._pool = _Pool(settings.worker_concurrency)
        self._waiting: list[Task] = []  # a heap of tasks due later (ETA, retry backoff)
        self._acks: list[str] = []
        self._keep: list[str] = []
        self._seq = itertools.count()
        self._stop = threading.Event()
        self._next_restore = 0.0

    def stop(self) -> None:
        """Take nothing more; `run` returns once the deliveries under way are acknowledged."""
        self._stop.set()

    def run(self) -> None:
        """Deliver until stopped."""
        while not self._stop.is_set():
            self._turn()
        self._drain()

    def _turn(self) -> None:
        self._collect(block=self._pool.busy + len(self._waiting) >= self._pool.size)
        self._start_due()
        self._restore_overdue()
        # A task waiting for its ETA or backoff holds a thread's place too: the worker never
        # holds more tasks than it has threads, and leaves the rest to other workers.
        free = max(0, self._pool.size - self._pool.busy - len(self._waiting))
        if not (free or self._acks or self._keep):
            return
        try:
            taken = self._broker.take(free, self._acks, self._keep)
        except Exception as error:  # the broker down: keep the acks, try again in a second
            self._broker_down(error)
            return
        self._acks, self._keep = [], []
        for item in taken:
            self._accept(item)
        self._start_due()
        if free and len(taken) < free:  # the queue is empty: sleep until a task arrives
            try:
                self._broker.wait(self._until_due())
            except Exception as error:
                self._broker_down(error)

    def _broker_down(self, error: Exception) -> None:
        """Say so and pause a second (or until stopped) before the next turn."""
        log.warning("broker unavailable: %s", type(error).__name__)
        self._stop.wait(1)

    def _accept(self, taken: Taken) -> None:
        try:
            task = parse_task(taken, next(self._seq))
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            # As a stock worker does with a message it cannot run: log it and drop it.
            log.error("dropped a message that is not a delivery task: %s", type(error).__name__)
            if taken.tag:
                self._acks.append(taken.tag)
            return
        heapq.heappush(self._waiting, task)

    def _start_due(self) -> None:
        now = time.time()
        while self._waiting and self._waiting[0].due <= now:
            self._pool.submit(heapq.heappop(self._waiting))

    def _until_due(self) -> float:
        return self._waiting[0].due - time.time() if self._waiting else 1.0

    def _collect(self, *, block: bool) -> None:
        """Take the outcomes in: acknowledge the final ones, schedule the retries."""
        done = self._pool.done
        try:
            if block:
                self._settle(*done.get(timeout=max(0.01, min(1.0, self._until_due()))))
            while True:
                self._settle(*done.get_nowait())
        except queue.Empty:
            pass

    def _settle(self, task: Task, outcome: Outcome) -> None:
        self._pool.busy -= 1
        if outcome is not Outcome.RETRY:
            if task.tag:
                self._acks.append(task.tag)
            return
        settings = self._settings
        task.due = time.time() + backoff_seconds(
            task.retries,
            base=settings.delivery_retry_base_seconds,
            cap=settings.delivery_retry_max_seconds,
        )
        task.retries += 1
        heapq.heappush(self._waiting, task)
        if task.tag:
            self._keep.append(task.tag)

    def _restore_overdue(self) -> None:
        if time.monotonic() < self._next_restore:
            return
        timeout = self._settings.celery_visibility_timeout_seconds
        self._next_restore = time.monotonic() + restore_interval(timeout)
        try:
            if restored := self._broker.restore_overdue(mutex_seconds=min(300, timeout)):
                log.warning("put back %d tasks unacknowledged past their timeout", restored)
        except Exception as error:
            log.warning("could not restore overdue tasks: %s", type(error).__name__)

    def _drain(self) -> None:
        """Finish the deliveries under way, acknowledge them, give the waiting ones back."""
        while self._pool.busy:
            self._collect(block=True)
        self._pool.close()
        try:
            self._broker.take(0, self._acks, [])
            self._broker.give_back([task.tag for task in self._waiting if task.tag])
        except Exception as error:  # the broker keeps them unacknowledged: restored later
            log.warning("could not hand tasks back: %s", type(error).__name__)


def run(settings: Settings) -> None:
    """Run the worker until SIGTERM or SIGINT; a second signal exits at once."""
    broker = RedisQueue(
        settings.broker_url,
        settings.celery_queue,
        visibility_timeout=settings.celery_visibility_timeout_seconds,
    )
    worker = Worker(settings, broker)

    def on_signal(signum: int, _: FrameType | None) -> None:
        if worker_stopping.is_set():
            os._exit(128 + signum)  # the broker still holds every unacknowledged task
        worker_stopping.set()
        worker.stop()

    worker_stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)

    def requeue(payload: str) -> None:
        broker.push(redis_envelope(task_message(TASK_NAME, [payload]), settings.celery_queue))

    sweeper = threading.Thread(
        target=sweep_outbox,
        args=(requeue, settings, worker_stopping),
        name="smscode-outbox",
        daemon=True,
    )
    sweeper.start()
    deliver_all([])  # builds the deliverer (settings, provider, store) before the first task
    # Everything built so far lives as long as the process: out of the collector's sight, a
    # full collection no longer walks ~60,000 start-up objects (20-60 ms with every thread
    # stopped, a stall every delivery under way would wait out).
    gc.freeze()
    # Celery's own readiness line, word for word: scripts and supervisors wait for it.
    log.info("celery@%s ready.", socket.gethostname())
    worker.run()
