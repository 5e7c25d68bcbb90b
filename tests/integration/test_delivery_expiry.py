"""The delivery core drops a message once its code expired: never sent late, state `expired`.

The core runs for real over the real Redis and the fake Ronglian; only its clock is moved
past the code's lifetime (the Deliverer takes a clock for this), and the queue is a list.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import redis

from smscode.adapters import keys
from smscode.adapters.metrics import PrometheusMetrics
from smscode.adapters.providers.ronglian import Credentials, RonglianProvider
from smscode.adapters.redis_client import connect
from smscode.adapters.redis_store import RedisStore
from smscode.bootstrap import policy
from smscode.domain.messages import DeliveryMessage
from smscode.domain.outcomes import Outcome
from smscode.domain.sealing import Sealer
from smscode.service_layer.deliver import Deliverer
from smscode.service_layer.send import Sender
from smscode.settings import Settings
from smscode_dev.embedded import free_port
from tests.conftest import CODE_SECRET
from tests.fakes.ronglian import DEFAULT_ACC_ID, DEFAULT_ACC_TOKEN, DEFAULT_APP_ID, FakeRonglian
from tests.helpers import fresh_phone

TTL = 300


class ListQueue:
    """The queue edge: keeps what the service publishes."""

    def __init__(self) -> None:
        self.messages: list[DeliveryMessage] = []

    def publish(self, message: DeliveryMessage) -> None:
        self.messages.append(message)


def issue(redis_url: str) -> tuple[Sender, DeliveryMessage]:
    """One accepted send through the real service; returns it and its queued message."""
    settings = Settings(redis_url=redis_url, code_secret=CODE_SECRET, code_ttl_seconds=TTL)
    queue = ListQueue()
    secret = CODE_SECRET.encode()
    store = RedisStore(connect(redis_url))
    service = Sender(policy(settings), store, queue, Sealer(secret), secret, PrometheusMetrics())
    service.issue(fresh_phone(), "127.0.0.1")
    [message] = queue.messages
    return service, message


def deliverer(store_url: str, base_url: str, clock: Callable[[], float]) -> Deliverer:
    creds = Credentials(DEFAULT_ACC_ID, DEFAULT_ACC_TOKEN, DEFAULT_APP_ID)
    provider = RonglianProvider(
        creds, template_id="1", base_url=base_url, connect_timeout=0.5, read_timeout=0.5
    )
    store = RedisStore(connect(store_url))
    sealer = Sealer(CODE_SECRET.encode())
    return Deliverer(
        store, provider, sealer, PrometheusMetrics(),
        lease_seconds=2, budget_seconds=1, providers=("ronglian",), pin_at_claim=True, clock=clock,
    )  # fmt: skip


def later() -> float:
    return time.time() + TTL + 1


def test_a_message_past_its_code_lifetime_is_not_sent_and_reads_expired(
    redis_client: redis.Redis, redis_url: str, fake_ronglian: FakeRonglian
) -> None:
    service, message = issue(redis_url)
    outcome = deliverer(redis_url, fake_ronglian.base_url, later).deliver(message)
    assert outcome is Outcome.EXPIRED
    assert service.status(message.request_id)["state"] == "expired"
    assert fake_ronglian.requests == []


def test_expired_after_the_record_itself_expired_still_answers_with_a_masked_phone(
    redis_client: redis.Redis, redis_url: str, fake_ronglian: FakeRonglian
) -> None:
    # the request record lives as long as the code: at expiry it is usually gone already
    service, message = issue(redis_url)
    redis_client.delete(keys.request(message.request_id), keys.code(message.phone))
    deliverer(redis_url, fake_ronglian.base_url, later).deliver(message)
    answer = service.status(message.request_id)
    assert answer["state"] == "expired"
    assert "****" in str(answer["phone"])


def test_ronglian_unreachable_until_expiry_retries_then_drops_without_sending(
    redis_client: redis.Redis, redis_url: str, fake_ronglian: FakeRonglian
) -> None:
    service, message = issue(redis_url)
    closed = f"http://127.0.0.1:{free_port()}"
    assert deliverer(redis_url, closed, time.time).deliver(message) is Outcome.RETRY
    assert service.status(message.request_id)["state"] == "queued"
    # the lease was released: the next attempt is not blocked by the failed one
    assert redis_client.exists(keys.lease(message.message_id)) == 0
    assert deliverer(redis_url, fake_ronglian.base_url, later).deliver(message) is Outcome.EXPIRED
    assert fake_ronglian.accepted == []


def test_an_expired_message_is_dropped_even_while_redis_is_down(
    redis_client: redis.Redis, redis_url: str, fake_ronglian: FakeRonglian
) -> None:
    _, message = issue(redis_url)
    down = f"redis://127.0.0.1:{free_port()}/0"
    assert deliverer(down, fake_ronglian.base_url, later).deliver(message) is Outcome.EXPIRED
    assert fake_ronglian.requests == []
