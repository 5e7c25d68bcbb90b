"""smscode's own worker on a Redis broker and the stock Celery worker share one queue's records.

Either may die holding tasks it took; the other puts them back after the visibility timeout
(kombu's `unacked` hash and `unacked_index` set), with the outbox sweep kept out of the way
(DELIVERY_RECHECK_SECONDS far off) so only that restore can deliver them.
"""

from __future__ import annotations

import sys

import pytest
import redis
from kombu.connection import Connection

from smscode.adapters.redis_queue import UNACKED, RedisQueue
from tests.conftest import stack_env
from tests.fakes.ronglian import FakeRonglian
from tests.helpers import Server, Worker, emptied, fresh_phone, redis_db, started
from tests.integration.test_faults_common import FAST, post

NO_SWEEP = {**FAST, "DELIVERY_RECHECK_SECONDS": "600", "CELERY_VISIBILITY_TIMEOUT_SECONDS": "10"}


class StockWorker(Worker):
    """`smscode worker --celery`: Celery's own worker whatever the broker."""

    def __init__(self, env: dict[str, str]) -> None:
        super().__init__(env)
        self.argv = [sys.executable, "-m", "smscode", "worker", "--celery"]


def _queued(server: Server, n: int) -> list[str]:
    phones = [fresh_phone() for _ in range(n)]
    assert [post(server.url, phone).status for phone in phones] == [202] * n
    return phones


@pytest.mark.slow
def test_a_stock_worker_restores_and_delivers_what_the_redis_worker_took_and_died_with(
    redis_client: redis.Redis, redis_url: str, fake_ronglian: FakeRonglian
) -> None:
    broker_url = redis_db(redis_url, 2)
    with emptied(broker_url) as broker:
        env = stack_env(redis_url, fake_ronglian, CELERY_BROKER_URL=broker_url, **NO_SWEEP)
        server = Server(env)
        with started(server):
            phones = _queued(server, 3)
            # given three tasks taken by smscode's worker, which then died without a trace
            taken = RedisQueue(broker_url, "celery", visibility_timeout=10).take(10, [], [])
            assert len(taken) == 3
            assert broker.llen("celery") == 0
            assert broker.hlen(UNACKED) == 3
            # when a stock Celery worker runs past the visibility timeout
            with started(StockWorker(env)):
                sms = fake_ronglian.wait_for(3, timeout=40)
        # then it put them back and delivered each once
        assert sorted(s.to for s in sms) == sorted(phones)
        assert len(fake_ronglian.requests) == 3
        assert broker.hlen(UNACKED) == 0


@pytest.mark.slow
def test_the_redis_worker_restores_and_delivers_what_a_stock_consumer_took_and_left(
    redis_client: redis.Redis, redis_url: str, fake_ronglian: FakeRonglian
) -> None:
    broker_url = redis_db(redis_url, 3)
    with emptied(broker_url) as broker:
        env = stack_env(redis_url, fake_ronglian, CELERY_BROKER_URL=broker_url, **NO_SWEEP)
        server = Server(env)
        with started(server), Connection(broker_url) as connection:
            [phone] = _queued(server, 1)
            # given a task kombu took and recorded as unacknowledged, never to ack it
            channel = connection.default_channel
            message = channel.basic_get("celery", no_ack=False)
            assert message is not None
            assert broker.hlen(UNACKED) == 1
            # when smscode's worker runs past the visibility timeout
            with started(Worker(env)):
                [sms] = fake_ronglian.wait_for(1, timeout=40)
            # then it put the task back and delivered it once
            assert sms.to == phone
            assert len(fake_ronglian.requests) == 1
            assert broker.hlen(UNACKED) == 0
            message.ack()  # nothing left to ack; the connection closes with nothing to restore


@pytest.mark.slow
def test_a_message_that_is_no_delivery_task_is_dropped_and_the_next_one_delivered(
    redis_client: redis.Redis, redis_url: str, fake_ronglian: FakeRonglian
) -> None:
    broker_url = redis_db(redis_url, 2)
    with emptied(broker_url) as broker:
        env = stack_env(redis_url, fake_ronglian, CELERY_BROKER_URL=broker_url, **FAST)
        server, worker = Server(env), Worker(env)
        with started(server, worker):
            # given garbage and an envelope without a delivery tag ahead of a real task
            broker.lpush("celery", "not json", '{"properties": {}}')
            [phone] = _queued(server, 1)
            # when the worker takes them, then it delivers the real one
            [sms] = fake_ronglian.wait_for(1, timeout=20)
            worker.wait_for_output("dropped a message")
        assert sms.to == phone
        assert "Traceback" not in worker.output()
        assert broker.llen("celery") == 0
        assert broker.hlen(UNACKED) == 0
