"""The code store's Redis restarted mid-run: 503 JSON during the outage, recovery, nothing lost.

The store is an embedded Redis with append-only persistence (as a production Redis would
have), in a folder the test keeps, so a restart on the same port finds the codes again. The
Celery broker is a different Redis (the session's), so the queue lives through the restart.
Without persistence the codes die with the server: queued messages then find no code and are
skipped, since an SMS carrying a code nobody can verify is worthless.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis
import requests

from smscode_dev.embedded import EmbeddedRedis, free_port
from tests.conftest import stack_env
from tests.fakes.ronglian import FakeRonglian
from tests.helpers import Server, Worker, fresh_phone, redis_db, started
from tests.integration.test_faults_common import FAST, count, post_many, report, settle


def persistent_redis(port: int, folder: Path) -> EmbeddedRedis:
    """An embedded Redis whose append-only file lives in `folder`, fsynced on every write."""
    extra = ["--appendonly", "yes", "--appendfsync", "always", "--dir", str(folder)]
    return EmbeddedRedis(port=port, extra_args=extra)


def wait_healthy(api: str, timeout: float = 20) -> None:
    """Poll /healthz until it answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if requests.get(f"{api}/healthz", timeout=3).status_code == 200:
            return
        time.sleep(0.2)
    raise AssertionError("the service did not recover")


@pytest.mark.slow
@pytest.mark.parametrize("shared", [False, True], ids=["broker-elsewhere", "broker-in-the-store"])
def test_redis_restart_mid_run_answers_503_then_recovers_and_loses_nothing(
    redis_url: str, fake_ronglian: FakeRonglian, tmp_path: Path, shared: bool
) -> None:
    # given a persistent store on a fixed port, and the broker elsewhere or (the default,
    # CELERY_BROKER_URL unset) in the same Redis, so the restart takes the queue down too
    port = free_port()
    store = persistent_redis(port, tmp_path).start()
    client = redis.Redis.from_url(store.url, decode_responses=True)
    broker_url = store.url if shared else redis_db(redis_url, 8)
    broker = redis.Redis.from_url(broker_url, decode_responses=True)
    broker.flushdb()
    env = stack_env(store.url, fake_ronglian, CELERY_BROKER_URL=broker_url, **FAST)
    if shared:
        del env["CELERY_BROKER_URL"]
    fake_ronglian.latency = 0.05  # deliveries still in flight when Redis goes away
    server = Server(env)
    workers = [Worker(env)]

    def supervise() -> None:
        # What compose's `restart: unless-stopped` does. With the broker in the restarted
        # Redis, kombu 5.7 can end the worker ("Unrecoverable error: AttributeError ...
        # 'hostname'") while it restores its unacknowledged tasks over the closed connection;
        # the tasks stay in the broker and the next worker delivers them.
        process = workers[-1].process
        if process is not None and process.poll() is not None:
            workers.append(Worker(env).start())

    try:
        with started(server, workers[0]):
            before = post_many(server.url, 150)
            # when Redis stops with deliveries in flight
            store.stop()
            during = [post_outage(server.url) for _ in range(10)]
            health = requests.get(f"{server.url}/healthz", timeout=3)
            # and comes back on the same port
            store = persistent_redis(port, tmp_path).start()
            wait_healthy(server.url)
            after = post_many(server.url, 150)
            sends = before + after
            settle(client, broker, sends, timeout=45, tick=supervise)
            counts = count(fake_ronglian, sends)
        # then
        where = "broker in the store" if shared else "broker elsewhere"
        report(
            f"Redis restarted, {where}, worker restarts={len(workers) - 1}", counts, fake_ronglian
        )
        assert all(send.status == 202 for send in sends)
        assert health.status_code == 503
        for answer in during:
            assert answer.status_code == 503
            assert answer.json()["error"] == "unavailable"
            assert answer.json()["status"] == "error"
        assert counts.lost == 0
        assert counts.duplicates == 0
    finally:
        for worker in workers:
            worker.stop()
        if not shared:
            broker.flushdb()
        broker.close()
        client.close()
        store.stop()


def post_outage(api: str) -> requests.Response:
    """One send while Redis is down; the 3 s client timeout fails the test if the server hangs."""
    return requests.post(f"{api}/codes", json={"phone": fresh_phone()}, timeout=3)


@pytest.mark.slow
def test_a_down_redis_answers_503_json_without_hanging(
    redis_url: str, fake_ronglian: FakeRonglian
) -> None:
    # given a store on a port nobody listens on
    env = stack_env(
        f"redis://127.0.0.1:{free_port()}/0", fake_ronglian,
        CELERY_BROKER_URL=redis_db(redis_url, 9), **FAST,
    )  # fmt: skip
    server = Server(env)
    with started(server):
        # when
        answers = [post_outage(server.url) for _ in range(5)]
        health = requests.get(f"{server.url}/healthz", timeout=3)
        verify = requests.post(
            f"{server.url}/codes/verify", json={"phone": fresh_phone(), "code": "123456"}, timeout=3
        )
    # then: contract JSON, no hang (the client timeout), no traceback
    assert [answer.status_code for answer in answers] == [503] * 5
    assert {answer.json()["error"] for answer in answers} == {"unavailable"}
    assert health.status_code == 503
    assert verify.status_code == 503
    assert "Traceback" not in server.output()
