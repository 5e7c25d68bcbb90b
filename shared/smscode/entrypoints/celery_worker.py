"""`smscode worker`: Celery's own worker, the `smscode.deliver` task over the intake, and the
outbox sweeper, on any broker (Redis, RabbitMQ).

Its settings, chosen by measurement, are in `adapters/celery_app.py`; its pool is Celery's
thread pool of WORKER_CONCURRENCY threads, all started before the first task: a delivery
spends ~100 ms waiting on the provider and ~1.5 ms of CPU, so one process keeps a hundred of
them in flight on one core. (Prefork would take a process per delivery in flight; gevent a
new dependency that patches every socket of ours and was no cheaper per task,
docs/benchmarks/index.md.)
"""

from __future__ import annotations

import gc
import logging
import os
import threading
from typing import Any

from celery import Celery
from celery.concurrency.thread import TaskPool
from celery.exceptions import Reject
from celery.signals import setup_logging, worker_ready, worker_shutdown

from smscode.adapters import logs
from smscode.adapters.celery_app import make_app
from smscode.adapters.publishers.celery import TASK_NAME
from smscode.domain.outcomes import Outcome
from smscode.entrypoints.intake import deliver_all
from smscode.entrypoints.outbox_sweeper import sweep_outbox
from smscode.service_layer.deliver import backoff_seconds
from smscode.settings import Settings

log = logging.getLogger("smscode.worker")


# Celery's own line per task received and per task finished: our delivery log line already
# says what happened to each message, and formatting two more cost more CPU than the rest of
# the worker's logging together. Their warnings and errors still show (all of it at DEBUG).
_PER_TASK_LOGGERS = ("celery.worker.strategy", "celery.app.trace")


def _setup_logging(level: str) -> None:
    logs.setup(level)
    if level != "DEBUG":
        for name in _PER_TASK_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)


class StartedThreadPool(TaskPool):  # type: ignore[misc]  # celery ships no annotations
    """Celery's thread pool, with every thread started before the worker takes a task.

    Its executor starts a thread when a task finds none idle, and the thread that submits
    (the worker's one consumer loop) waits until the new one runs: a GIL hand-over each,
    late under load, for each of the first WORKER_CONCURRENCY tasks. Those tasks were the
    slowest 1 % of a run started on a fresh worker (docs/benchmarks/index.md, end to end p99).
    """

    def on_start(self) -> None:
        super().on_start()
        # Every thread waits at the barrier until all are up: no submit finds one idle.
        started = threading.Barrier(self.limit + 1)
        for _ in range(self.limit):
            self.executor.submit(started.wait, 10)
        try:
            started.wait(10)
        except threading.BrokenBarrierError:  # a slow start: the rest start on demand
            log.warning("the worker's threads were not all started in 10 s")


def _on_ready(sweeper: threading.Thread) -> None:
    """Once the worker consumes: the deliverer built, the sweeper started, the heap frozen."""
    deliver_all([])  # builds the deliverer (settings, provider, store) before the first task
    sweeper.start()
    # Everything built so far lives as long as the process: out of the collector's sight, a
    # full collection no longer walks the ~90,000 start-up objects (measured: ~95 ms with
    # every thread stopped, a stall every delivery under way would wait out).
    gc.freeze()


def create_worker_app(settings: Settings) -> Celery:
    """The worker's Celery app with the delivery task registered."""
    app = make_app(settings.broker_url, settings.celery_queue)
    app.conf.worker_pool = f"{__name__}:{StartedThreadPool.__name__}"
    # Connecting this signal tells Celery to leave logging alone: our JSON lines stay as they are.
    setup_logging.connect(lambda **_: _setup_logging(settings.log_level), weak=False)
    base, cap = settings.delivery_retry_base_seconds, settings.delivery_retry_max_seconds
    stop = threading.Event()
    sweeper = threading.Thread(
        target=sweep_outbox,
        args=(lambda payload: app.send_task(TASK_NAME, args=[payload]), settings, stop),
        name="smscode-outbox",
        daemon=True,
    )
    worker_ready.connect(lambda **_: _on_ready(sweeper), weak=False)
    worker_shutdown.connect(lambda **_: stop.set(), weak=False)

    @app.task(name=TASK_NAME, bind=True, max_retries=None)  # type: ignore[untyped-decorator]
    def deliver(task: Any, payload: str) -> str:
        [outcome] = deliver_all([payload])
        if outcome is Outcome.RETRY:
            countdown = backoff_seconds(task.request.retries, base=base, cap=cap)
            try:
                raise task.retry(countdown=countdown)
            except Reject:
                # Celery drops a message whose retry could not be queued (Reject without
                # requeue). Requeue it instead; if even that fails the outbox sweeper
                # queues it again once it is overdue.
                log.warning("retry could not be queued; requeueing", extra={"outcome": "retry"})
                raise Reject("retry could not be queued", requeue=True) from None
        return outcome.value

    return app


def run(settings: Settings) -> None:
    """Run the worker until a warm shutdown (SIGTERM or SIGINT), as Celery's CLI would."""
    # --quiet: no start-up banner, so every line the worker prints is one JSON log object.
    # A node name of its own per process: on RabbitMQ each worker's remote-control queue is
    # exclusive to its name, and a second `celery@<host>` on one host (one worker per core)
    # would end at start-up with RESOURCE_LOCKED.
    # Gossip, mingle and heartbeat are worker-to-worker chatter nothing of ours uses (every
    # worker would otherwise read every other's heartbeat); remote control stays on.
    create_worker_app(settings).worker_main([
        "--quiet", "worker", f"--hostname=smscode-{os.getpid()}@%h",
        f"--concurrency={settings.worker_concurrency}", f"--loglevel={settings.log_level}",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ])  # fmt: skip
