"""500 sends while the Celery worker is SIGKILLed at random moments and restarted."""

from __future__ import annotations

import random
import threading
import time

import pytest
import redis

from tests.conftest import stack_env
from tests.fakes.ronglian import FakeRonglian
from tests.helpers import Server, Worker
from tests.integration.test_faults_common import (
    FAST,
    Sent,
    broker_db,
    count,
    post_many,
    report,
    settle,
    started,
)


@pytest.mark.slow
def test_500_sends_survive_a_worker_killed_at_random_moments(
    redis_client: redis.Redis, redis_url: str, fake_ronglian: FakeRonglian
) -> None:
    # given a short visibility timeout, so kombu hands a killed worker's tasks out again soon
    broker_url = broker_db(redis_url, 6)
    broker = redis.Redis.from_url(broker_url, decode_responses=True)
    broker.flushdb()
    env = stack_env(
        redis_url, fake_ronglian, CELERY_BROKER_URL=broker_url,
        CELERY_VISIBILITY_TIMEOUT_SECONDS="10", **FAST,
    )  # fmt: skip
    fake_ronglian.latency = 0.05  # deliveries overlap the kills instead of finishing at once
    server = Server(env)
    workers: list[Worker] = []
    sends: list[Sent] = []
    try:
        with started(server):
            workers.append(Worker(env).start())
            traffic = threading.Thread(target=lambda: sends.extend(post_many(server.url, 500)))
            traffic.start()
            kills = 0
            # when the worker dies by SIGKILL (no warm shutdown, nothing acked) again and again
            while traffic.is_alive() or kills < 4:
                time.sleep(random.uniform(0.2, 1.5))
                workers[-1].kill()
                kills += 1
                workers.append(Worker(env).start())
            traffic.join()
            settle(redis_client, broker, sends, timeout=45)
            counts = count(fake_ronglian, sends)
        # then
        report(f"worker SIGKILLed {kills} times", counts, fake_ronglian)
        assert counts.accepted == 500
        assert counts.lost == 0
        assert counts.duplicates == 0
    finally:
        for worker in workers:
            worker.stop()
        broker.flushdb()
        broker.close()
