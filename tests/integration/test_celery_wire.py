"""Celery messages written directly (no Celery app per publish), consumed by a stock worker.

The hand-written envelope leans on two things kombu does not promise: where its Redis
transport keeps a queue's priority-0 messages, and the envelope's fields. The first test
holds both against what the installed Celery and kombu write themselves, so an upgrade
within the range pyproject.toml allows that changed either fails here.
"""

from __future__ import annotations

import base64
import json
import uuid

import pytest
import redis
from kombu.connection import Connection

from smscode.adapters import keys
from smscode.adapters.celery_app import make_app
from smscode.adapters.publishers.celery import TASK_NAME
from smscode.adapters.publishers.celery_wire import redis_envelope, redis_queue_key, task_message
from tests.conftest import stack_env
from tests.fakes.ronglian import FakeRonglian
from tests.helpers import Server, Worker, emptied, fresh_phone, redis_db, started
from tests.integration.test_faults_common import FAST, post
from tests.integration.test_faults_worker_kill import RABBITMQ, rabbitmq_reachable

# What differs between two messages of one task by design: ids, the sender, the log repr.
_PER_MESSAGE = {"id", "root_id", "origin", "argsrepr", "ignore_result"}
_PER_ENVELOPE = {"correlation_id", "delivery_tag", "reply_to"}


def test_a_directly_written_task_is_what_celery_writes_where_celery_writes_it(
    redis_url: str,
) -> None:
    # given one task sent by Celery itself (kombu's Redis transport) and one written by hand
    queue = "smscode-wire-shape"
    with emptied(redis_db(redis_url, 10)) as broker:
        make_app(redis_db(redis_url, 10), queue).send_task(TASK_NAME, args=['{"m": 1}'])
        lists = [key for key in broker.scan_iter() if broker.type(key) == "list"]
        celery = json.loads(broker.lindex(lists[0], 0) or "")
    ours = json.loads(redis_envelope(task_message(TASK_NAME, ['{"m": 1}']), queue))
    # then both go on the same list: the one the worker reads for priority 0
    assert lists == [redis_queue_key(queue)]
    # and they are the same message: the same fields, and every value that is not an id
    assert set(ours) == set(celery)
    for part, differ in (("headers", _PER_MESSAGE), ("properties", _PER_ENVELOPE)):
        assert set(ours[part]) == set(celery[part])
        same = set(celery[part]) - differ
        assert {f: ours[part][f] for f in same} == {f: celery[part][f] for f in same}
    for field in set(celery) - {"headers", "properties", "body"}:
        assert ours[field] == celery[field]
    our_body, celery_body = (json.loads(base64.b64decode(e["body"])) for e in (ours, celery))
    assert our_body == celery_body


def _one_sms_each(server: Server, fake: FakeRonglian, n: int = 5) -> list[str]:
    phones = [fresh_phone() for _ in range(n)]
    answers = [post(server.url, phone) for phone in phones]
    assert [answer.status for answer in answers] == [202] * n
    fake.wait_for(n, timeout=30)
    return phones


@pytest.mark.slow
def test_on_the_code_stores_own_redis_the_issuing_script_queues_the_task(
    redis_client: redis.Redis, redis_url: str, fake_ronglian: FakeRonglian
) -> None:
    # given a broker that is the code store itself (CELERY_BROKER_URL = REDIS_URL)
    queue = f"smscode-test-wire-{uuid.uuid4().hex[:12]}"
    env = stack_env(redis_url, fake_ronglian, CELERY_BROKER_URL=redis_url, CELERY_QUEUE=queue)
    env.update(FAST)
    server = Server(env)
    with started(server):
        # when sends are accepted before any worker runs
        phones = [fresh_phone() for _ in range(3)]
        assert [post(server.url, phone).status for phone in phones] == [202] * 3
        # then each task is on the queue's list already, next to its outbox entry
        assert redis_client.llen(queue) == 3
        assert redis_client.zcard(keys.outbox()) == 3
        # and a stock Celery worker delivers each exactly once
        with started(Worker(env)):
            sms = fake_ronglian.wait_for(3, timeout=30)
            phones += _one_sms_each(server, fake_ronglian, 2)
            sms = fake_ronglian.wait_for(5, timeout=30)
    assert sorted(s.to for s in sms) == sorted(phones)
    assert len(fake_ronglian.requests) == 5
    assert redis_client.llen(queue) == 0
    assert redis_client.zcard(keys.outbox()) == 0


@pytest.mark.slow
@pytest.mark.skipif(not rabbitmq_reachable(), reason="no RabbitMQ on 127.0.0.1:5672")
def test_on_rabbitmq_a_stock_worker_consumes_the_directly_written_task(
    redis_client: redis.Redis, redis_url: str, fake_ronglian: FakeRonglian
) -> None:
    # given the machine's RabbitMQ, a queue of this test's own, the server publishing first
    queue = f"smscode-test-wire-{uuid.uuid4().hex[:12]}"
    env = stack_env(redis_url, fake_ronglian, CELERY_BROKER_URL=RABBITMQ, CELERY_QUEUE=queue)
    env.update(FAST)
    server = Server(env)
    try:
        with started(server):
            phones = [fresh_phone() for _ in range(3)]
            assert [post(server.url, phone).status for phone in phones] == [202] * 3
            # when a stock worker starts on that queue
            with started(Worker(env)):
                phones += _one_sms_each(server, fake_ronglian, 2)
                sms = fake_ronglian.wait_for(5, timeout=30)
        # then every send reached the provider once
        assert sorted(s.to for s in sms) == sorted(phones)
        assert len(fake_ronglian.requests) == 5
        assert redis_client.zcard(keys.outbox()) == 0
    finally:
        with Connection(RABBITMQ, connect_timeout=2) as connection:
            connection.default_channel.queue_delete(queue)
