"""The Celery app `smscode worker` runs, and its settings, each chosen by measurement.

docs/benchmarks/index.md "The worker: stock Celery, tuned" has the figures; in short, on one
stock worker process with a 100 ms provider:

- **Acks late** on every broker. RabbitMQ redelivers a dead worker's unacknowledged tasks
  the moment its connection drops, and a task in flight is one: nothing is lost. With
  early acks a task is acknowledged when taken, so prefetch no longer bounds what one
  worker holds (it would take the whole queue into its memory).
- **No ack emulation on Redis** (kombu's `ack_emulation`). kombu records each task taken
  from a Redis list in its `unacked` hash and index (a MULTI/EXEC through a new client), and
  deletes that record on the ack (another): ~400 µs of the worker's CPU per task, a quarter
  of its rate. What those records buy is a dead worker's tasks back after the visibility
  timeout (an hour by default), and they never covered a worker killed between its BRPOP
  and the record. The outbox covers both, sooner: every message stays in it until a worker
  records a final state, and each worker's sweeper queues again whatever is still not
  final `DELIVERY_RECHECK_SECONDS` (60) after it was queued or last retried
  (`entrypoints/outbox_sweeper.py`). Delivery is idempotent (claim, lease, the provider's
  request id), so a copy costs a claim, never an SMS. A warm shutdown still finishes what
  the worker runs and puts back what it took and had not started.
- **Prefetch: one task per thread** (`worker_prefetch_multiplier=1`), so the threads are the
  whole of what one worker holds: a dead worker leaves as little as possible for the outbox
  sweep, and a backlog is shared by every worker. A multiplier of 4 was no faster beyond
  the noise.
- **No results**: nothing reads a task's return value, so no backend and nothing stored.
- No `task_reject_on_worker_lost`: it concerns a pool's child process dying; in the thread
  pool the worker lost is the whole process, and the broker (or the outbox) has its tasks.
- No per-task events, no gossip, mingle or heartbeat between workers
  (`entrypoints/celery_worker.py`): remote control stays, so `celery inspect ping` answers.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

_REDIS_SCHEMES = ("redis://", "rediss://")


def _transport_options(broker_url: str) -> dict[str, Any]:
    """kombu's transport options for this broker (see the module's docstring)."""
    if not broker_url.startswith(_REDIS_SCHEMES):
        return {}
    return {"ack_emulation": False, "socket_timeout": 2, "socket_connect_timeout": 2}


def make_app(broker_url: str, queue: str = "celery") -> Celery:
    """A Celery app for smscode: late acks, one task per thread, no results, fail-fast broker."""
    app = Celery("smscode", broker=broker_url)
    app.conf.update(
        task_default_queue=queue,
        task_acks_late=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        broker_connection_timeout=2,
        broker_connection_retry_on_startup=True,
        broker_transport_options=_transport_options(broker_url),
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,  # the console provider prints to the real stdout
        worker_send_task_events=False,
    )
    return app
