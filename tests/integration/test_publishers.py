"""Every Publisher passes one suite: a real consumer delivers what it publishes exactly once,
and a broker that is down raises PublishError at once instead of hanging the request.

Each backend is built as the running service builds it (bootstrap.PUBLISHERS, from the
settings), with its real consumer: a `smscode worker` on Redis or RabbitMQ, Lambda's poller
over moto SQS, or the inline thread pool. A new queue joins by adding one entry to BACKENDS
and one to DOWN.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta

import pytest
import redis
from kombu.connection import Connection

from smscode import bootstrap
from smscode.domain.messages import DeliveryMessage
from smscode.domain.sealing import Sealer
from smscode.service_layer.ports import PublishError
from smscode.settings import get_settings
from smscode_dev.embedded import free_port
from tests.cloud_helpers import configure
from tests.conftest import CODE_SECRET, stack_env
from tests.fakes.ronglian import FakeRonglian
from tests.helpers import Worker, fresh_phone, redis_db, started

RABBITMQ = "amqp://guest:guest@127.0.0.1:5672//"
BROKER_DB = 3  # the Redis broker's database: the session's worker reads database 1
# Longest a publish to a dead broker may take: the HTTP function answers 503 within it.
FAIL_FAST_SECONDS = 10


Backend = Callable[[pytest.FixtureRequest], AbstractContextManager[None]]


def _celery_on(broker: Callable[[str], str]) -> Backend:
    @contextmanager
    def run(request: pytest.FixtureRequest) -> Iterator[None]:
        redis_url: str = request.getfixturevalue("redis_url")
        fake: FakeRonglian = request.getfixturevalue("fake_ronglian")
        queue = f"smscode-test-publish-{uuid.uuid4().hex[:12]}"  # shared brokers: our own queue
        env = stack_env(
            redis_url, fake, DELIVERY_BACKEND="celery", CELERY_BROKER_URL=broker(redis_url),
            CELERY_QUEUE=queue,
        )  # fmt: skip
        configure(request.getfixturevalue("monkeypatch"), env)
        try:
            with started(Worker(env)):
                yield
        finally:
            if env["CELERY_BROKER_URL"] == RABBITMQ:
                with Connection(RABBITMQ, connect_timeout=2) as connection:
                    connection.default_channel.queue_delete(queue)
            else:
                redis.Redis.from_url(env["CELERY_BROKER_URL"]).flushdb()

    return run


@contextmanager
def _sqs(request: pytest.FixtureRequest) -> Iterator[None]:
    request.getfixturevalue("cloud").start_poller()  # conftest's `cloud` configures this process
    yield


@contextmanager
def _inline(request: pytest.FixtureRequest) -> Iterator[None]:
    redis_url: str = request.getfixturevalue("redis_url")
    fake: FakeRonglian = request.getfixturevalue("fake_ronglian")
    configure(
        request.getfixturevalue("monkeypatch"),
        stack_env(redis_url, fake, DELIVERY_BACKEND="inline"),
    )
    yield


# One entry per way of queueing: set this process up to publish there, with a consumer running.
BACKENDS: dict[str, Backend] = {
    "celery-redis": _celery_on(lambda redis_url: redis_db(redis_url, BROKER_DB)),
    "celery-rabbitmq": _celery_on(lambda _: RABBITMQ),
    "sqs": _sqs,
    "inline": _inline,
}

# One entry per backend with a broker: the settings that aim it at a closed port.
DOWN: dict[str, Callable[[int], dict[str, str]]] = {
    "celery-redis": lambda port: {
        "DELIVERY_BACKEND": "celery", "CELERY_BROKER_URL": f"redis://127.0.0.1:{port}/0",
    },
    "celery-rabbitmq": lambda port: {
        "DELIVERY_BACKEND": "celery", "CELERY_BROKER_URL": f"amqp://guest:guest@127.0.0.1:{port}//",
    },
    "sqs": lambda port: {
        "DELIVERY_BACKEND": "sqs",
        "SQS_QUEUE_URL": f"http://127.0.0.1:{port}/123456789012/smscode-deliveries",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    },
}  # fmt: skip


@pytest.fixture(params=sorted(BACKENDS))
def backend(
    request: pytest.FixtureRequest, redis_client: redis.Redis, fake_ronglian: FakeRonglian
) -> Iterator[str]:
    """This process publishing through one backend, a real consumer on the other side."""
    try:
        with BACKENDS[request.param](request):
            yield request.param
    finally:
        bootstrap.reset()


def test_a_published_message_is_delivered_exactly_once(
    backend: str, fake_ronglian: FakeRonglian
) -> None:
    # given
    phone = fresh_phone()
    sender = bootstrap.sender()
    # when a code is issued through the configured publisher
    issued = sender.issue(phone, "127.0.0.1")
    # then the consumer delivers it and records it sent
    [sms] = fake_ronglian.wait_for(1, timeout=30)
    deadline = time.monotonic() + 10
    while sender.status(issued.request_id)["state"] != "sent":
        assert time.monotonic() < deadline, sender.status(issued.request_id)
        time.sleep(0.05)
    assert sms.to == phone
    # and once only: a second copy of the message, had the queue made one, would be skipped
    time.sleep(1)
    assert len(fake_ronglian.sms_to(phone)) == 1


def message() -> DeliveryMessage:
    now, message_id = datetime.now(UTC), uuid.uuid4().hex
    return DeliveryMessage(
        message_id=message_id,
        request_id=uuid.uuid4().hex,
        phone=f"+86{fresh_phone()}",
        sealed_code=Sealer(CODE_SECRET.encode()).seal("123456", message_id),
        minutes=5,
        created_at=now,
        expires_at=now + timedelta(minutes=5),
    )


@pytest.mark.parametrize("name", sorted(DOWN))
def test_a_broker_that_is_down_raises_publish_error_fast(
    name: str,
    monkeypatch: pytest.MonkeyPatch,
    redis_url: str,
    redis_client: redis.Redis,
    fake_ronglian: FakeRonglian,
) -> None:
    # given the backend aimed at a port nobody listens on
    configure(monkeypatch, stack_env(redis_url, fake_ronglian, **DOWN[name](free_port())))
    settings = get_settings()
    publisher = bootstrap.PUBLISHERS[settings.delivery_backend](settings)
    # when / then
    began = time.monotonic()
    try:
        with pytest.raises(PublishError):
            publisher.publish(message())
    finally:
        bootstrap.reset()
    assert time.monotonic() - began < FAIL_FAST_SECONDS
