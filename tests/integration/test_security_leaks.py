"""Leaks: with DEBUG logs and the ronglian provider, no token and no code in clear anywhere."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator

import pytest
import redis
import requests

from tests.conftest import CODE_SECRET, stack_env
from tests.fakes.ronglian import DEFAULT_ACC_TOKEN, FakeRonglian
from tests.helpers import Server, Worker, emptied, fresh_phone, redis_db

PHONES = 3
# A broker database of its own: the session's shared worker must not take these messages.
BROKER_DB = 5


def _dump(client: redis.Redis) -> list[str]:
    """Every key and value in the database, as text."""
    seen: list[str] = []
    for key in client.scan_iter("*"):
        seen.append(str(key))
        kind = client.type(key)
        if kind == "string":
            seen.append(str(client.get(key)))
        elif kind == "hash":
            seen.extend(f"{f!s}={v!s}" for f, v in client.hgetall(key).items())
        elif kind == "list":
            seen.extend(map(str, client.lrange(key, 0, -1)))
        elif kind == "set":
            seen.extend(map(str, client.smembers(key)))
        elif kind == "zset":
            seen.extend(map(str, client.zrange(key, 0, -1)))
    return seen


def _bodies(kombu_messages: list[str]) -> list[str]:
    """The task bodies inside kombu's envelopes (base64 JSON), decoded."""
    bodies = []
    for raw in kombu_messages:
        envelope = json.loads(raw)
        bodies.append(base64.b64decode(envelope["body"]).decode())
    return bodies


@pytest.fixture
def broker(redis_url: str) -> Iterator[tuple[str, redis.Redis]]:
    url = redis_db(redis_url, BROKER_DB)
    with emptied(url) as client:
        yield url, client


@pytest.mark.slow
def test_no_token_or_code_in_logs_redis_or_queue(
    redis_url: str,
    redis_client: redis.Redis,
    fake_ronglian: FakeRonglian,
    broker: tuple[str, redis.Redis],
) -> None:
    # given: the full stack at DEBUG, with Ronglian behind the fake
    broker_url, broker_client = broker
    env = stack_env(redis_url, fake_ronglian, LOG_LEVEL="DEBUG", CELERY_BROKER_URL=broker_url)
    server, worker = Server(env).start(), Worker(env)
    seen: list[str] = []
    phones = [fresh_phone() for _ in range(PHONES)]
    try:
        # when: codes are queued while no worker runs, so they wait in the broker's list
        for phone in phones:
            answer = requests.post(f"{server.url}/codes", json={"phone": phone}, timeout=10)
            assert answer.status_code == 202
        pending = [str(task) for task in broker_client.lrange("celery", 0, -1)]
        assert len(pending) == PHONES
        queued = _bodies(pending)
        assert all("sealed_code" in body for body in queued)
        seen += pending + queued + _dump(broker_client) + _dump(redis_client)
        # ... then a worker takes them while Ronglian is slow, so they are in flight: in the
        # worker's memory and the store's leases (kombu keeps no record of them on Redis,
        # adapters/celery_app.py)
        fake_ronglian.latency = 2.0
        worker.start()
        for _ in range(200):
            if broker_client.llen("celery") == 0:
                break
            time.sleep(0.05)
        assert broker_client.llen("celery") == 0, "the worker never took the messages"
        assert not fake_ronglian.accepted, "delivered before the broker could be read in flight"
        seen += _dump(broker_client) + _dump(redis_client)
        sent = fake_ronglian.wait_for(PHONES, timeout=30)
        fake_ronglian.latency = 0.0
        codes = {sms.to: sms.datas[0] for sms in sent}
        assert len(codes) == PHONES
        # ... and every code is tried wrong once, then right
        for phone in phones:
            wrong = str((int(codes[phone]) + 1) % 10**6).zfill(6)
            for code, status in ((wrong, 400), (codes[phone], 200)):
                answer = requests.post(
                    f"{server.url}/codes/verify", json={"phone": phone, "code": code}, timeout=10
                )
                assert answer.status_code == status
                seen.append(answer.text)
        seen += _dump(broker_client) + _dump(redis_client)
    finally:
        fake_ronglian.latency = 0.0
        server.stop()
        worker.stop()
    logs = server.output() + worker.output()
    # then: the run did log at DEBUG, and nothing anywhere holds a secret or a code
    assert '"level": "debug"' in logs
    for where, text in [("logs", logs), *(("redis or queue", item) for item in seen)]:
        assert DEFAULT_ACC_TOKEN not in text, where
        assert CODE_SECRET not in text, where
        for code in codes.values():
            # digits standing alone: a float such as a task's run time may hold any six
            assert not re.search(rf"(?<![0-9]){code}(?![0-9])", text), (where, text[:300])
