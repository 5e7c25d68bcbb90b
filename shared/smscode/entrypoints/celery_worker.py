"""The stock Celery worker: the `smscode.deliver` task over the intake, and the outbox sweeper.

`smscode worker` runs it on RabbitMQ (or with `--celery`); on a Redis broker it runs
`redis_worker`, which consumes the same messages at a fraction of the CPU per task.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import Celery
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


def create_worker_app(settings: Settings) -> Celery:
    """The worker's Celery app with the delivery task registered."""
    app = make_app(
        settings.broker_url, settings.celery_visibility_timeout_seconds, settings.celery_queue
    )
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
    worker_ready.connect(lambda **_: sweeper.start(), weak=False)
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
                # requeue). Requeue it instead; if even that fails the broker still holds
                # it unacknowledged and hands it out again after the visibility timeout.
                log.warning("retry could not be queued; requeueing", extra={"outcome": "retry"})
                raise Reject("retry could not be queued", requeue=True) from None
        return outcome.value

    return app
