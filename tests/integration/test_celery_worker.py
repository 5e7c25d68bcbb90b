"""`smscode worker` is Celery's own worker, on a Redis broker as on RabbitMQ.

Celery's tools see it (`celery inspect`), it takes tasks at every priority, it drops what is
no delivery task and goes on, and a warm shutdown finishes what it took. The outbox sweep is
kept out of the way (DELIVERY_RECHECK_SECONDS far off) wherever it could deliver a message
in the worker's place.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from celery import Celery
from kombu.connection import Connection

from smscode.adapters.publishers.celery import TASK_NAME
from smscode.adapters.publishers.celery_wire import redis_envelope, task_message
from tests.conftest import stack_env
from tests.fakes.ronglian import FakeRonglian
from tests.helpers import Server, Worker, emptied, fresh_phone, redis_db, started
from tests.integration.test_faults_common import FAST, post
from tests.integration.test_faults_worker_kill import RABBITMQ, rabbitmq_reachable

NO_SWEEP = {**FAST, "DELIVERY_RECHECK_SECONDS": "600"}


@pytest.fixture
def redis_url(own_redis_url: str) -> str:
    """A Redis of the test's own: no other test's worker may sweep its outbox."""
    return own_redis_url


@pytest.fixture(params=["redis", "rabbitmq"])
def broker_url(request: pytest.FixtureRequest, redis_url: str) -> str:
    """A Redis database for the broker, or the machine's RabbitMQ."""
    if request.param == "redis":
        return redis_db(redis_url, 9)
    if not rabbitmq_reachable():
        pytest.skip("no RabbitMQ on 127.0.0.1:5672")
    return RABBITMQ


@pytest.fixture
def queue(broker_url: str) -> Iterator[str]:
    """A queue of the test's own (RabbitMQ is shared with other tests and engineers)."""
    name = f"smscode-test-{uuid.uuid4().hex[:12]}"
    yield name
    if broker_url == RABBITMQ:
        with Connection(RABBITMQ, connect_timeout=2) as connection:
            connection.default_channel.queue_delete(name)


def _inspect(broker_url: str, command: str) -> dict[str, object]:
    """`celery -b <broker> inspect <command> --json`: every worker's answer, by node name."""
    argv = [sys.executable, "-m", "celery", "-b", broker_url, "inspect", command, "-t", "5", "-j"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    answers: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return answers


def _names(active_queues: object) -> list[str]:
    """The queue names in one worker's answer to `inspect active_queues`."""
    assert isinstance(active_queues, list)
    return [str(queue["name"]) for queue in active_queues]


def _payloads(envelope: object) -> list[str]:
    """The delivery task's arguments inside a kombu Redis envelope."""
    body = json.loads(base64.b64decode(json.loads(str(envelope))["body"]))
    args: list[str] = body[0]
    return args


@pytest.mark.slow
def test_celery_inspect_sees_the_worker_on_its_broker(
    redis_url: str, fake_ronglian: FakeRonglian, broker_url: str, queue: str
) -> None:
    # given `smscode worker` on a queue of its own
    env = stack_env(redis_url, fake_ronglian, CELERY_BROKER_URL=broker_url, CELERY_QUEUE=queue)
    with started(Worker(env)):
        # when Celery's own command line asks every worker on the broker
        pongs = _inspect(broker_url, "ping")
        queues = _inspect(broker_url, "active_queues")
    # then it answers, and (other workers may share RabbitMQ) it is the one consuming our queue
    assert {"ok": "pong"} in pongs.values()
    assert any(queue in _names(answer) for answer in queues.values())


@pytest.mark.slow
def test_two_workers_on_one_host_share_a_broker(
    redis_url: str, fake_ronglian: FakeRonglian, broker_url: str, queue: str
) -> None:
    # given two `smscode worker` processes on one host and one queue (one per core)
    env = stack_env(redis_url, fake_ronglian, CELERY_BROKER_URL=broker_url, CELERY_QUEUE=queue)
    with started(Worker(env), Worker(env)):
        # when Celery asks who consumes what
        queues = _inspect(broker_url, "active_queues")
    # then both started (each under a node name of its own) and consume that queue
    consumers = [node for node, answer in queues.items() if queue in _names(answer)]
    assert len(consumers) == 2


@pytest.mark.slow
def test_a_task_at_a_higher_priority_is_delivered(
    redis_client: redis.Redis, redis_url: str, fake_ronglian: FakeRonglian
) -> None:
    # given an accepted send whose task is queued again by Celery itself at priority 5 (kombu
    # keeps it on another Redis list than priority 0's), and no outbox sweep to rescue it
    broker_url = redis_db(redis_url, 9)
    with emptied(broker_url) as broker:
        env = stack_env(redis_url, fake_ronglian, CELERY_BROKER_URL=broker_url, **NO_SWEEP)
        server = Server(env)
        with started(server):
            phone = fresh_phone()
            assert post(server.url, phone).status == 202
            [payload] = _payloads(broker.rpop("celery"))
            Celery(broker=broker_url).send_task(TASK_NAME, args=[payload], priority=5)
            assert broker.llen("celery") == 0
            # when the worker runs, then it delivers that task
            with started(Worker(env)):
                [sms] = fake_ronglian.wait_for(1, timeout=20)
    assert sms.to == phone


@pytest.mark.slow
def test_a_message_that_is_no_delivery_task_is_dropped_and_the_next_one_delivered(
    redis_client: redis.Redis, redis_url: str, fake_ronglian: FakeRonglian
) -> None:
    broker_url = redis_db(redis_url, 9)
    with emptied(broker_url) as broker:
        env = stack_env(redis_url, fake_ronglian, CELERY_BROKER_URL=broker_url, **FAST)
        server, worker = Server(env), Worker(env)
        with started(server, worker):
            # given another app's task, a delivery task with the wrong arguments and an
            # envelope with nothing in it, ahead of a real task
            broker.lpush(
                "celery",
                redis_envelope(task_message("other.task", ["x"]), "celery"),
                redis_envelope(task_message(TASK_NAME, ["a", "b"]), "celery"),
                '{"properties": {}}',
            )
            phone = fresh_phone()
            assert post(server.url, phone).status == 202
            # when the worker takes them, then it delivers the real one
            [sms] = fake_ronglian.wait_for(1, timeout=20)
            worker.wait_for_output("unregistered task of type 'other.task'")
        assert sms.to == phone
        assert "Traceback" not in worker.output()
        assert broker.llen("celery") == 0


@pytest.mark.slow
def test_a_warm_shutdown_delivers_what_the_worker_took_and_leaves_the_rest_queued(
    redis_client: redis.Redis, redis_url: str, fake_ronglian: FakeRonglian
) -> None:
    # given ten queued sends, a slow provider, and a worker of two threads
    broker_url = redis_db(redis_url, 9)
    with emptied(broker_url) as broker:
        env = stack_env(
            redis_url, fake_ronglian, CELERY_BROKER_URL=broker_url,
            **{**NO_SWEEP, "WORKER_CONCURRENCY": "2"},
        )  # fmt: skip
        server = Server(env)
        with started(server):
            phones = [fresh_phone() for _ in range(10)]
            assert [post(server.url, phone).status for phone in phones] == [202] * 10
            fake_ronglian.latency = 0.3  # below FAST's 0.5 s read timeout
            first = Worker(env).start()
            # when it is told to stop while deliveries are under way
            deadline = time.monotonic() + 10
            while broker.llen("celery") == 10 and time.monotonic() < deadline:
                time.sleep(0.02)
            first.stop()
            # then it finished what it took before exiting, and left the rest queued
            took = 10 - broker.llen("celery")
            assert first.process is not None
            assert first.process.returncode == 0
            assert 1 <= took < 10
            assert len(fake_ronglian.accepted) == took
            fake_ronglian.latency = 0.0
            with started(Worker(env)):
                sms = fake_ronglian.wait_for(10, timeout=30)
    assert sorted(s.to for s in sms) == sorted(phones)
    assert len(fake_ronglian.requests) == 10
