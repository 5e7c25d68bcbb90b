"""The Celery adapter: the `smscode.deliver` task over the shared delivery core."""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from celery.exceptions import Reject
from celery.signals import setup_logging
from pydantic import ValidationError

from smscode import logs
from smscode.bootstrap import deliverer
from smscode.celery_app import make_app
from smscode.delivery import Outcome, backoff_seconds
from smscode.errors import Unavailable
from smscode.messages import DeliveryMessage
from smscode.publishers.celery import TASK_NAME
from smscode.settings import Settings

log = logging.getLogger("smscode.worker")


def create_worker_app(settings: Settings) -> Celery:
    """The worker's Celery app with the delivery task registered."""
    app = make_app(
        settings.broker_url, settings.celery_visibility_timeout_seconds, settings.celery_queue
    )
    # Connecting this signal tells Celery to leave logging alone: our JSON lines stay as they are.
    setup_logging.connect(lambda **_: logs.setup(settings.log_level), weak=False)
    base, cap = settings.delivery_retry_base_seconds, settings.delivery_retry_max_seconds

    @app.task(name=TASK_NAME, bind=True, max_retries=None)  # type: ignore[untyped-decorator]
    def deliver(task: Any, payload: str) -> str:
        try:
            message = DeliveryMessage.from_json(payload)
        except ValidationError:
            # A poison message would fail the same way forever: log it and let it go.
            log.error("dropping a malformed delivery message")
            return "malformed"
        try:
            outcome = deliverer().deliver(message)
        except Unavailable:
            outcome = Outcome.RETRY  # Redis is down: keep the message, try again later
        except Exception as error:
            # A failed task is acknowledged and gone; retrying keeps the message until the
            # core drops it as expired. No traceback: log lines must stay free of stack traces.
            log.error(
                "delivery crashed: %s",
                type(error).__name__,
                extra={"request_id": message.request_id, "outcome": "retry"},
            )
            outcome = Outcome.RETRY
        if outcome is Outcome.RETRY:
            countdown = backoff_seconds(task.request.retries, base=base, cap=cap)
            try:
                raise task.retry(countdown=countdown)
            except Reject:
                # Celery drops a message whose retry could not be queued (Reject without
                # requeue). Requeue it instead; if even that fails the broker still holds
                # it unacknowledged and hands it out again after the visibility timeout.
                log.warning(
                    "retry could not be queued; requeueing",
                    extra={"request_id": message.request_id, "outcome": "retry"},
                )
                raise Reject("retry could not be queued", requeue=True) from None
        return outcome.value

    return app
