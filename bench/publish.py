"""The broker publish's CPU cost: Celery's send_task, smscode's direct publish, a plain LPUSH."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import redis

from smscode.domain.messages import DeliveryMessage


@dataclass
class PublishCost:
    """CPU microseconds per publish, in this process, one thread."""

    celery_us: float
    lpush_us: float
    direct_us: float = 0.0  # CeleryPublisher: the protocol-2 message built and LPUSHed


def _message() -> DeliveryMessage:
    now = datetime.now(UTC)
    return DeliveryMessage(
        message_id=uuid.uuid4().hex,
        request_id=uuid.uuid4().hex,
        phone="+8613900000000",
        sealed_code="x" * 40,
        minutes=5,
        created_at=now,
        expires_at=now + timedelta(minutes=5),
    )


def _cpu_us(call: Callable[[], object], n: int) -> float:
    for _ in range(50):  # warm: connections, declarations, caches
        call()
    start = time.process_time()
    for _ in range(n):
        call()
    return (time.process_time() - start) / n * 1e6


def measure(broker_url: str, n: int = 3000) -> PublishCost:
    """n publishes each way to the broker Redis, which is emptied afterwards."""
    from smscode.adapters.celery_app import make_app
    from smscode.adapters.publishers.celery import TASK_NAME, CeleryPublisher
    from smscode.adapters.redis_client import connect
    from smscode.adapters.redis_store import RedisStore
    from smscode.service_layer.ports import Staged

    message = _message()
    app = make_app(broker_url)
    publisher = CeleryPublisher(broker_url, outbox=RedisStore(connect(broker_url)))
    client = redis.Redis.from_url(broker_url)
    body = message.to_json()
    staged = Staged(message.message_id, body, 60_000)
    try:
        return PublishCost(
            celery_us=_cpu_us(lambda: app.send_task(TASK_NAME, args=[body]), n),
            lpush_us=_cpu_us(lambda: client.lpush("bench-reference", body), n),
            direct_us=_cpu_us(lambda: publisher.publish_staged(staged), n),
        )
    finally:
        client.flushdb()
        client.close()
