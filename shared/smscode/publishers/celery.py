"""Publishes to the Celery worker by task name, without importing the worker module."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from smscode.messages import DeliveryMessage
from smscode.publishers import PublishError

TASK_NAME = "smscode.deliver"


class CeleryPublisher:
    """Sends `smscode.deliver` to the broker; Celery is imported on the first publish only."""

    def __init__(self, broker_url: str, visibility_timeout: int, queue: str = "celery") -> None:
        self._broker_url = broker_url
        self._visibility_timeout = visibility_timeout
        self._queue = queue

    @cached_property
    def _app(self) -> Any:
        from smscode.celery_app import make_app

        return make_app(self._broker_url, self._visibility_timeout, self._queue)

    def publish(self, message: DeliveryMessage) -> None:
        """Queue the message, failing within about two seconds when the broker is down."""
        try:
            self._app.send_task(
                TASK_NAME,
                args=[message.to_json()],
                retry=True,
                retry_policy={"max_retries": 1, "interval_start": 0.2, "interval_step": 0.5},
            )
        except Exception as error:  # kombu raises many types for a broker it cannot reach
            raise PublishError(f"broker unavailable: {type(error).__name__}") from error
