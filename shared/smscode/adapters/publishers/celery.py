"""Publishes `smscode.deliver` tasks for a stock Celery worker, writing Celery's message directly.

No Celery app or Task object is built per request (`send_task` costs 6-10 times a plain
LPUSH, docs/benchmarks/history.md): the protocol-2 message comes from `celery_wire`. On a
Redis broker it is one LPUSH, and none at all when the broker is the code store's own Redis
and database: `issue.lua` pushes it while it accepts the send. Any other broker (RabbitMQ) gets
it through a pooled kombu producer.
"""

from __future__ import annotations

from contextlib import suppress
from functools import cached_property
from typing import TYPE_CHECKING, Any

from smscode.adapters.publishers.celery_wire import redis_envelope, redis_queue_key, task_message
from smscode.domain.errors import Unavailable
from smscode.domain.messages import DeliveryMessage
from smscode.service_layer.ports import PublishError, Staged

if TYPE_CHECKING:
    from smscode.adapters.redis_client import Client
    from smscode.adapters.redis_store import RedisStore

TASK_NAME = "smscode.deliver"
_REDIS_SCHEMES = ("redis://", "rediss://")
# kombu retries a publish to an unreachable broker once, so a 503 comes within ~2 seconds.
_RETRY_POLICY = {"max_retries": 1, "interval_start": 0.2, "interval_step": 0.5}


class CeleryPublisher:
    """Queues each message for `smscode.deliver`, keeping it in the outbox until it is final.

    The outbox (in the code store) holds each message until a worker records a final state
    for it; the worker's sweeper queues it again if that takes longer than `recheck_seconds`
    (a broker that lost it). Delivery is idempotent, so a second copy costs a Redis round
    trip, never a second SMS. `same_redis`: the broker URL is the code store's, so the
    message is queued by the store's issuing script itself.
    """

    def __init__(
        self,
        broker_url: str,
        queue: str = "celery",
        *,
        outbox: RedisStore,
        recheck_seconds: float = 60,
        same_redis: bool = False,
    ) -> None:
        self._broker_url = broker_url
        self._queue = queue
        self._outbox = outbox
        self._recheck_ms = int(recheck_seconds * 1000)
        self._redis_broker = broker_url.startswith(_REDIS_SCHEMES)
        self._in_script = same_redis and self._redis_broker

    def stage(self, message: DeliveryMessage) -> Staged:
        """The message as the outbox keeps it; with its Celery envelope if the script queues it."""
        payload = message.to_json()
        if not self._in_script:
            return Staged(message.message_id, payload, self._recheck_ms)
        envelope = redis_envelope(task_message(TASK_NAME, [payload]), self._queue)
        return Staged(
            message.message_id, payload, self._recheck_ms, redis_queue_key(self._queue), envelope
        )

    def publish_staged(self, staged: Staged) -> None:
        """Queue a message the store already holds in its outbox (unless its script queued it)."""
        if staged.queue_key is not None:
            return
        try:
            self._push(staged.payload)
        except Exception as error:  # redis-py or kombu: many types for a broker it cannot reach
            # If this fails too the sweeper queues it again; its code is gone: it is skipped.
            with suppress(Unavailable):
                self._outbox.release(staged.message_id)
            raise PublishError(f"broker unavailable: {type(error).__name__}") from error

    def publish(self, message: DeliveryMessage) -> None:
        """Keep the message in the outbox, then queue it; PublishError within about 2 s."""
        payload = message.to_json()
        try:
            self._outbox.hold(message.message_id, payload, self._recheck_ms)
        except Unavailable as error:
            raise PublishError("outbox unavailable") from error
        self.publish_staged(Staged(message.message_id, payload, self._recheck_ms))

    def _push(self, payload: str) -> None:
        message = task_message(TASK_NAME, [payload])
        if self._redis_broker:
            self._broker.lpush(redis_queue_key(self._queue), redis_envelope(message, self._queue))
            return
        with self._kombu_producers[self._kombu_connection].acquire(block=True, timeout=5) as p:
            p.publish(
                message.body,
                exchange="",
                routing_key=self._queue,
                declare=[self._kombu_queue],
                content_type="application/json",
                content_encoding="utf-8",
                headers=message.headers,
                delivery_mode=2,
                correlation_id=message.task_id,
                reply_to="",
                priority=0,
                retry=True,
                retry_policy=_RETRY_POLICY,
            )

    @cached_property
    def _broker(self) -> Client:
        from smscode.adapters.redis_client import connect

        return connect(self._broker_url)

    @cached_property
    def _kombu_connection(self) -> Any:
        import kombu

        untyped: Any = kombu  # kombu ships no annotations for these
        return untyped.Connection(self._broker_url, connect_timeout=2)

    @cached_property
    def _kombu_producers(self) -> Any:
        from kombu.pools import producers

        return producers

    @cached_property
    def _kombu_queue(self) -> Any:
        # Declared as Celery's worker declares its default queue: a mismatch closes the channel.
        import kombu

        untyped: Any = kombu
        exchange = untyped.Exchange(self._queue, type="direct")
        return untyped.Queue(self._queue, exchange, routing_key=self._queue)
