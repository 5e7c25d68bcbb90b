"""500 sends while Ronglian fails 30 % of calls transiently (172001 included) and answers late."""

from __future__ import annotations

import pytest
import redis

from tests.conftest import stack_env
from tests.fakes.ronglian import FakeRonglian, Fault, FaultSpec
from tests.helpers import Server, Worker, emptied, redis_db, started
from tests.integration.test_faults_common import FAST, count, post_many, report, settle

# Passing failures as the server answers them: 172001 "network error" (the SDK makes the same
# code of a client-side error, and the server answers it too), a code in no table, an HTTP
# 500, a 160050 "send failed", a garbled answer, or one that comes too late.
TRANSIENT: list[FaultSpec] = [
    (Fault.STATUS, "172001"),
    (Fault.STATUS, "170999"),
    Fault.HTTP_500,
    (Fault.STATUS, "160050"),
    Fault.SLOW_SENT,  # sent, but answered after the client's read timeout
    Fault.GARBAGE,
]


@pytest.mark.slow
def test_500_sends_with_30_percent_transient_failures_and_late_answers(
    redis_client: redis.Redis,
    redis_url: str,
    fake_ronglian: FakeRonglian,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broker_url = redis_db(redis_url, 7)
    with emptied(broker_url) as broker:
        env = stack_env(redis_url, fake_ronglian, CELERY_BROKER_URL=broker_url, **FAST)
        monkeypatch.setattr(fake_ronglian, "slow_seconds", 1.0)  # twice the 0.5 s read timeout
        fake_ronglian.chaos(0.3, TRANSIENT)
        server = Server(env)
        with started(server, Worker(env)):
            sends = post_many(server.url, 500)
            settle(redis_client, broker, sends, timeout=45)
            counts = count(fake_ronglian, sends)
        report("transient 30% + late answers", counts, fake_ronglian)
        assert counts.accepted == 500
        assert counts.lost == 0
        assert counts.duplicates == 0
