"""The one place that starts servers for the tests.

A real Redis (embedded unless REDIS_URL is set), the fake Ronglian and the fake Aliyun, the
session's `smscode serve` + `smscode worker`, a module's own server (its SERVER_ENV), a moto
SQS queue with this process configured as the deployed functions (its CLOUD_OPTIONS), and the
HTTP function in-process through functions-framework's test client. tests/unit uses none of them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from smscode_dev.cloud import LocalCloud
from smscode_dev.embedded import EmbeddedRedis
from smscode_dev.gcp import PubSubEmulator, ToolMissing
from smscode_dev.stack import new_signing_key
from tests.fakes.aliyun import FakeAliyun
from tests.fakes.ronglian import DEFAULT_ACC_ID, DEFAULT_ACC_TOKEN, DEFAULT_APP_ID, FakeRonglian
from tests.helpers import Server, Worker, redis_db, started

ROOT = Path(__file__).resolve().parents[1]

CODE_SECRET = "test-secret-0123456789abcdefghij"
# The operator's key for /admin and /metrics (API_KEYS), as (id, secret).
ADMIN_KEY = ("ops", "ops-secret-0123456789abcdefghij")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """REDIS_URL when given (it must be a disposable database), else an embedded server."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    with EmbeddedRedis() as server:
        yield server.url


@pytest.fixture
def own_redis_url() -> Iterator[str]:
    """An embedded Redis of the test's own. The run's Redis is shared: the session stack's
    worker sweeps its outbox, and would deliver a fault test's overdue messages itself."""
    with EmbeddedRedis() as server:
        yield server.url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client on the test database, emptied before each test."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(scope="session")
def pubsub_emulator() -> Iterator[PubSubEmulator]:
    """The Google Cloud SDK's Pub/Sub emulator for the run; skipped, naming what to install,
    on a machine without it or without Java."""
    try:
        emulator = PubSubEmulator().start()
    except ToolMissing as missing:
        pytest.skip(str(missing))
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def fake_ronglian_session() -> Iterator[FakeRonglian]:
    """One fake Ronglian for the whole run."""
    with FakeRonglian() as fake:
        yield fake


@pytest.fixture
def fake_ronglian(fake_ronglian_session: FakeRonglian) -> FakeRonglian:
    """The fake Ronglian, forgotten and fault-free at the start of each test."""
    fake_ronglian_session.reset()
    fake_ronglian_session.latency = 0.0
    return fake_ronglian_session


@pytest.fixture(scope="session")
def fake_aliyun_session() -> Iterator[FakeAliyun]:
    """One fake Aliyun for the whole run."""
    with FakeAliyun() as fake:
        yield fake


@pytest.fixture
def fake_aliyun(fake_aliyun_session: FakeAliyun) -> FakeAliyun:
    """The fake Aliyun, forgotten, fault-free and back to its defaults at the start of each test."""
    fake_aliyun_session.reset()
    default = FakeAliyun()  # not started: only its settings are read
    for name in (
        "secrets",
        "sign_name",
        "template_code",
        "latency",
        "slow_seconds",
        "records_delay",
        "clock",
    ):
        setattr(fake_aliyun_session, name, getattr(default, name))
    return fake_aliyun_session


def broker_url(redis_url: str) -> str:
    """Database 1 of the test Redis, for the Celery broker."""
    return redis_db(redis_url, 1)


def stack_env(redis_url: str, fake: FakeRonglian, **overrides: str) -> dict[str, str]:
    """Settings for a server or worker under test: ronglian through the fake, generous caps."""
    env = {
        "REDIS_URL": redis_url,
        "CODE_SECRET": CODE_SECRET,
        "SMS_PROVIDER": "ronglian",
        "RONGLIAN_ACC_ID": DEFAULT_ACC_ID,
        "RONGLIAN_ACC_TOKEN": DEFAULT_ACC_TOKEN,
        "RONGLIAN_APP_ID": DEFAULT_APP_ID,
        "RONGLIAN_BASE_URL": fake.base_url,
        "RONGLIAN_READ_TIMEOUT_SECONDS": "1",
        "RONGLIAN_CONNECT_TIMEOUT_SECONDS": "1",
        "DELIVERY_BACKEND": "celery",
        # the broker in its own database: tests empty the code store's between them
        "CELERY_BROKER_URL": broker_url(redis_url),
        # every test request comes from 127.0.0.1: per-IP and global caps get their own tests
        "IP_HOURLY_LIMIT": "1000000",
        "GLOBAL_MINUTE_LIMIT": "1000000",
        "PREFIX_HOURLY_LIMIT": "1000000",
        "VERIFY_IP_HOURLY_LIMIT": "1000000",
        "SERVE_WORKERS": "2",
        "SERVE_THREADS": "8",
        "WORKER_CONCURRENCY": "16",
        "LOG_LEVEL": "INFO",
        "API_KEYS": ":".join(ADMIN_KEY),
    }
    env.update(overrides)
    return env


@pytest.fixture(scope="session")
def stack(redis_url: str, fake_ronglian_session: FakeRonglian) -> Iterator[tuple[Server, Worker]]:
    """`smscode serve` and `smscode worker` with the ronglian provider, shared by the run."""
    env = stack_env(redis_url, fake_ronglian_session)
    server, worker = Server(env), Worker(env)
    with started(server, worker):
        yield server, worker


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, redis_url: str, fake_ronglian_session: FakeRonglian
) -> Iterator[Server]:
    """A module's own `smscode serve`: stack_env with the module's SERVER_ENV on top."""
    overrides: dict[str, str] = request.module.SERVER_ENV
    with started(running := Server(stack_env(redis_url, fake_ronglian_session, **overrides))):
        yield running


@pytest.fixture
def api(
    request: pytest.FixtureRequest, redis_client: redis.Redis, fake_ronglian: FakeRonglian
) -> str:
    """The base URL of the HTTP function, with Redis and the fake reset.

    The module's own server when the module sets SERVER_ENV, else the session's stack.
    """
    if hasattr(request.module, "SERVER_ENV"):
        own: Server = request.getfixturevalue("server")
        return own.url
    shared: tuple[Server, Worker] = request.getfixturevalue("stack")
    return shared[0].url


@pytest.fixture
def cloud(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    redis_url: str,
    redis_client: redis.Redis,
    fake_ronglian: FakeRonglian,
) -> Iterator[LocalCloud]:
    """A moto SQS queue of its own (the module's CLOUD_OPTIONS), and this process configured
    as the deployed functions would be."""
    from smscode import bootstrap
    from tests.cloud_helpers import configure, new_cloud

    local = new_cloud(**getattr(request.module, "CLOUD_OPTIONS", {}))
    configure(monkeypatch, stack_env(redis_url, fake_ronglian, **local.env))
    yield local
    local.stop()
    bootstrap.reset()


def function_client(source: str, target: str, signature_type: str = "http") -> Any:
    """functions-framework's Flask test client for a function source under the repository."""
    import functions_framework

    app = functions_framework.create_app(
        target=target, source=str(ROOT / source), signature_type=signature_type
    )
    return app.test_client()


TOKEN_AUDIENCE = "example-shop"


@pytest.fixture(scope="session")
def signing_key() -> str:
    """The Ed25519 private key (PEM) the token server signs with."""
    return new_signing_key()


@pytest.fixture(scope="session")
def token_server(
    stack: tuple[Server, Worker],
    redis_url: str,
    fake_ronglian_session: FakeRonglian,
    signing_key: str,
) -> Iterator[Server]:
    """A second `smscode serve` that signs verification tokens; the session's worker delivers."""
    env = stack_env(
        redis_url,
        fake_ronglian_session,
        TOKEN_SIGNING_KEY=signing_key,
        TOKEN_AUDIENCE=TOKEN_AUDIENCE,
        SERVE_WORKERS="1",
    )
    with started(server := Server(env)):
        yield server


@pytest.fixture
def token_api(token_server: Server, redis_client: redis.Redis, fake_ronglian: FakeRonglian) -> str:
    """The base URL of the token-signing HTTP function, with Redis and the fake reset."""
    return token_server.url
