"""Publishes to the Celery worker by task name, without importing the worker module."""

from __future__ import annotations

from contextlib import suppress
from functools import cached_property
from typing import TYPE_CHECKING, Any

from smscode.domain.errors import Unavailable
from smscode.domain.messages import DeliveryMessage
from smscode.service_layer.ports import PublishError

if TYPE_CHECKING:
    from smscode.adapters.redis_store import RedisStore

TASK_NAME = "smscode.deliver"


class CeleryPublisher:
    """Sends `smscode.deliver` to the broker; Celery is imported on the first publish only.

    With an `outbox`, each message is first kept in Redis until a worker records a final
    state for it; the worker's sweeper queues it again if that takes longer than
    `recheck_seconds` (a broker that lost it). Delivery is idempotent, so a second copy
    costs a Redis round trip, never a second SMS.
    """

    def __init__(
        self,
        broker_url: str,
        visibility_timeout: int,
        queue: str = "celery",
        *,
        outbox: RedisStore | None = None,
        recheck_seconds: float = 60,
    ) -> None:
        self._broker_url = broker_url
        self._visibility_timeout = visibility_timeout
        self._queue = queue
        self._outbox = outbox
        self._recheck_ms = int(recheck_seconds * 1000)

    @cached_property
    def _app(self) -> Any:
        from smscode.adapters.celery_app import make_app

        return make_app(self._broker_url, self._visibility_timeout, self._queue)

    def publish(self, message: DeliveryMessage) -> None:
        """Queue the message, failing within about two seconds when the broker is down."""
        payload = message.to_json()
        if self._outbox is not None:
            try:
                self._outbox.hold(message.message_id, payload, self._recheck_ms)
            except Unavailable as error:
                raise PublishError("outbox unavailable") from error
        try:
            self._app.send_task(
                TASK_NAME,
                args=[payload],
                retry=True,
                retry_policy={"max_retries": 1, "interval_start": 0.2, "interval_step": 0.5},
            )
        except Exception as error:  # kombu raises many types for a broker it cannot reach
            if self._outbox is not None:
                # if this fails the sweeper queues it again; its code is gone: it is skipped
                with suppress(Unavailable):
                    self._outbox.release(message.message_id)
            raise PublishError(f"broker unavailable: {type(error).__name__}") from error
