"""The Celery worker: the `smscode.deliver` task over the intake, and the outbox sweeper."""

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
from smscode.bootstrap import store
from smscode.domain.outcomes import Outcome
from smscode.entrypoints.intake import deliver_all
from smscode.service_layer.deliver import backoff_seconds
from smscode.settings import Settings

log = logging.getLogger("smscode.worker")


def sweep_outbox(app: Celery, settings: Settings, stop: threading.Event) -> None:
    """Queue again every message still not final a recheck period after it was last queued.

    A broker can lose a task (kombu's Redis transport, when a worker dies between taking a
    task and recording it as unacknowledged). Each overdue message is handed to one sweeper
    per period; delivery is idempotent, so a copy of a message that was only slow is harmless.
    """
    recheck_ms = settings.delivery_recheck_seconds * 1000
    pause = min(5.0, settings.delivery_recheck_seconds / 2)
    while not stop.wait(pause):
        try:
            payloads = store().sweep(recheck_ms)
            for payload in payloads:
                app.send_task(TASK_NAME, args=[payload])
        except Exception as error:  # Redis or the broker down: try again next period
            log.warning("outbox sweep failed: %s", type(error).__name__)
            continue
        if payloads:
            log.warning("queued %d overdue messages again", len(payloads))


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
        target=sweep_outbox, args=(app, settings, stop), name="smscode-outbox", daemon=True
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
