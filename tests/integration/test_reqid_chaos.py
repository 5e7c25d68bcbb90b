"""reqId idempotency: ambiguous failures, slow answers and racing redeliveries give one SMS.

Run as a module (`python -m tests.integration.test_reqid_chaos`) it is a Celery worker whose
provider omits reqId, as `ronglian_sms_sdk` does: the variant that proves the chaos test can
fail.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

import pytest
import redis

from smscode.domain.outcomes import Result, Sms
from smscode.service_layer.ports import Lease, Provider
from tests.conftest import stack_env
from tests.fakes.ronglian import FakeRonglian, Fault
from tests.helpers import Server, Worker, emptied, fresh_phone, redis_db, started
from tests.integration.test_faults_common import (
    FAST,
    Counts,
    VariantWorker,
    count,
    post,
    post_many,
    report,
    settle,
)

MODULE = "tests.integration.test_reqid_chaos"
AMBIGUOUS = [Fault.DROP_SENT, Fault.DROP_UNSENT]


class WithoutReqId:
    """The real Ronglian provider, sending without reqId (so without Ronglian's dedup)."""

    def __init__(self, inner: Provider) -> None:
        self._inner = inner

    def send(self, sms: Sms, lease: Lease) -> Result:
        return self._inner.send(replace(sms, key=None), lease)


def run_worker_without_req_id() -> None:
    """`smscode worker` with the ronglian provider wrapped in WithoutReqId."""
    from smscode import bootstrap
    from smscode.entrypoints import cli

    real = bootstrap.PROVIDERS["ronglian"]
    bootstrap.PROVIDERS["ronglian"] = lambda settings: WithoutReqId(real(settings))
    cli.main(["worker"])


@pytest.mark.slow
def test_300_sends_with_30_percent_ambiguous_failures_each_get_one_sms(
    redis_client: redis.Redis, redis_url: str, fake_ronglian: FakeRonglian
) -> None:
    counts = run_chaos(redis_client, redis_url, fake_ronglian, 2, Worker)
    report("ambiguous 30%, reqId", counts, fake_ronglian)
    assert counts.accepted == 300
    assert counts.lost == 0
    assert counts.duplicates == 0


@pytest.mark.slow
def test_the_same_traffic_without_req_id_loses_or_duplicates(
    redis_client: redis.Redis, redis_url: str, fake_ronglian: FakeRonglian
) -> None:
    counts = run_chaos(
        redis_client, redis_url, fake_ronglian, 3, lambda env: VariantWorker(env, MODULE)
    )
    report("ambiguous 30%, no reqId (must fail)", counts, fake_ronglian)
    assert counts.accepted == 300
    assert counts.lost + counts.duplicates > 0


def run_chaos(
    redis_client: redis.Redis,
    redis_url: str,
    fake: FakeRonglian,
    db: int,
    make_worker: Callable[[Mapping[str, str]], Worker],
) -> Counts:
    """300 sends through the real server and the given worker, 30 % ambiguous failures."""
    broker_url = redis_db(redis_url, db)
    with emptied(broker_url) as broker:
        env = stack_env(redis_url, fake, CELERY_BROKER_URL=broker_url, **FAST)
        server = Server(env)
        fake.chaos(0.3, AMBIGUOUS)
        with started(server, make_worker(env)):
            sends = post_many(server.url, 300)
            settle(redis_client, broker, sends)
            return count(fake, sends)


def queued_payload(broker: redis.Redis) -> str:
    """The one task waiting in the Celery queue, as the broker holds it."""
    [raw] = broker.lrange("celery", 0, -1)
    return str(raw)


@pytest.mark.slow
def test_a_slow_answer_then_redeliveries_give_one_sms(
    redis_client: redis.Redis,
    redis_url: str,
    fake_ronglian: FakeRonglian,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given one accepted send, queued twice (a redelivery racing the first delivery)
    broker_url = redis_db(redis_url, 4)
    with emptied(broker_url) as broker:
        env = stack_env(redis_url, fake_ronglian, CELERY_BROKER_URL=broker_url, **FAST)
        monkeypatch.setattr(fake_ronglian, "slow_seconds", 1.0)  # past the 0.5 s read timeout
        fake_ronglian.script(Fault.SLOW_SENT)
        server, worker = Server(env), Worker(env)
        with started(server):
            sent = post(server.url, fresh_phone())
            assert sent.status == 202
            raw = queued_payload(broker)
            broker.lpush("celery", raw)
            # when a worker delivers both copies
            with started(worker):
                settle(redis_client, broker, [sent])
                # and the queue delivers the same message once more, after it was sent
                calls = len(fake_ronglian.requests)
                broker.lpush("celery", raw)
                settle(redis_client, broker, [sent])
                # then
                counts = count(fake_ronglian, [sent])
                report("slow answer + redeliveries", counts)
                statuses = [r.status for r in fake_ronglian.requests]
                assert counts.sms == 1
                assert statuses[0] == "000000"  # answered after our timeout: MaybeSent
                assert "160054" in statuses  # the retry, same reqId, recognised as sent
                assert len(fake_ronglian.requests) == calls  # the late copy never called out
                assert redis_client.hget(f"{{smscode}}:req:{sent.request_id}", "state") == "sent"


@pytest.mark.slow
def test_the_lease_alone_keeps_racing_copies_to_one_provider_call(
    redis_client: redis.Redis, redis_url: str, fake_ronglian: FakeRonglian
) -> None:
    # given two workers WITHOUT reqId (no provider dedup), a slow-but-answering provider and
    # one accepted send queued four times
    broker_url = redis_db(redis_url, 5)
    with emptied(broker_url) as broker:
        env = stack_env(
            redis_url, fake_ronglian, CELERY_BROKER_URL=broker_url, **FAST,
        )  # fmt: skip
        env["RONGLIAN_READ_TIMEOUT_SECONDS"] = "3"  # the 1 s answer comes in time
        fake_ronglian.latency = 1.0
        server = Server(env)
        workers = [VariantWorker(env, MODULE), VariantWorker(env, MODULE)]
        with started(server):
            sent = post(server.url, fresh_phone())
            assert sent.status == 202
            raw = queued_payload(broker)
            for _ in range(3):
                broker.lpush("celery", raw)
            # when both workers take the copies at once
            with started(*workers):
                settle(redis_client, broker, [sent])
                counts = count(fake_ronglian, [sent])
        # then the provider was called once: every other copy found the lease or 'sent'
        report("lease race, no reqId", counts)
        assert counts.sms == 1
        assert len(fake_ronglian.requests) == 1


if __name__ == "__main__":
    run_worker_without_req_id()
