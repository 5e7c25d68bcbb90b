"""A broker that cannot be reached: 503 at once, and the phone keeps its resend slot."""

from __future__ import annotations

import pytest
import redis
import requests

from smscode.adapters import keys
from smscode_dev.embedded import EmbeddedRedis, free_port
from tests.conftest import stack_env
from tests.fakes.ronglian import FakeRonglian
from tests.helpers import Server, Worker, emptied, fresh_phone, redis_db, started
from tests.integration.test_faults_common import FAST


def send(api: str, phone: str) -> requests.Response:
    """POST /codes; the 5 s client timeout fails the test if the server hangs on the broker."""
    return requests.post(f"{api}/codes", json={"phone": phone}, timeout=5)


def slot_untouched(client: redis.Redis, phone: str) -> bool:
    """No code, no resend marker and no daily send counted for the phone."""
    e164 = f"+86{phone}"
    held = client.exists(keys.code(e164), keys.resend(e164))
    return held == 0 and int(client.get(keys.phone_daily(e164)) or 0) == 0


@pytest.mark.slow
def test_redis_broker_down_answers_503_then_the_same_phone_gets_202_when_it_is_back(
    redis_client: redis.Redis, redis_url: str, fake_ronglian: FakeRonglian
) -> None:
    # given a Redis broker on a port where nothing listens yet
    port = free_port()
    broker_url = f"redis://127.0.0.1:{port}/0"
    env = stack_env(redis_url, fake_ronglian, CELERY_BROKER_URL=broker_url, **FAST)
    server, phone = Server(env), fresh_phone()
    with started(server):
        # when
        down = send(server.url, phone)
        # then
        assert down.status_code == 503
        assert down.json()["error"] == "unavailable"
        assert slot_untouched(redis_client, phone)
        # when the broker comes up on that port, with a worker
        with EmbeddedRedis(port=port), started(Worker(env)):
            back = send(server.url, phone)
            # then the phone was not held back by the failed send, and gets its one SMS
            assert back.status_code == 202, back.text
            [sms] = fake_ronglian.wait_for(1, timeout=20)
    assert sms.to == phone
    took = down.elapsed.total_seconds()
    print(f"\n[redis broker down] first={down.status_code} in {took:.2f}s, then {back.status_code}")


@pytest.mark.slow
def test_amqp_broker_down_answers_503_and_keeps_the_resend_slot(
    redis_client: redis.Redis, redis_url: str, fake_ronglian: FakeRonglian
) -> None:
    # given a RabbitMQ URL on a closed port (kombu's amqp transport), then a working broker
    down_env = stack_env(
        redis_url, fake_ronglian,
        CELERY_BROKER_URL=f"amqp://guest:guest@127.0.0.1:{free_port()}//", **FAST,
    )  # fmt: skip
    phone = fresh_phone()
    with started(down_server := Server(down_env)):
        down = [send(down_server.url, phone) for _ in range(2)]
    assert [answer.status_code for answer in down] == [503, 503]
    assert slot_untouched(redis_client, phone)
    # when the same phone asks through a server whose broker works
    up_env = stack_env(redis_url, fake_ronglian, CELERY_BROKER_URL=redis_db(redis_url, 10), **FAST)
    with started(up_server := Server(up_env)):
        back = send(up_server.url, phone)
    # then: 202, not 429
    assert back.status_code == 202, back.text
    redis.Redis.from_url(up_env["CELERY_BROKER_URL"]).flushdb()
    took = [round(answer.elapsed.total_seconds(), 2) for answer in down]
    print(f"\n[amqp broker down] 503 in {took} s, then {back.status_code}")


@pytest.mark.slow
def test_a_task_the_broker_lost_is_queued_again_from_the_outbox(
    redis_client: redis.Redis, redis_url: str, fake_ronglian: FakeRonglian
) -> None:
    # given an accepted send whose task then vanishes from the broker
    broker_url = redis_db(redis_url, 13)
    with emptied(broker_url) as broker:
        env = stack_env(redis_url, fake_ronglian, CELERY_BROKER_URL=broker_url, **FAST)
        server, phone = Server(env), fresh_phone()
        with started(server):
            assert send(server.url, phone).status_code == 202
            assert broker.delete("celery") == 1  # the queue held it; now it is gone
            # when a worker runs (its sweeper looks at the outbox)
            with started(Worker(env)):
                [sms] = fake_ronglian.wait_for(1, timeout=30)
                again = len(fake_ronglian.requests)
        # then exactly one SMS, and the outbox is empty
        assert sms.to == phone
        assert again == 1
        assert redis_client.zcard(keys.outbox()) == 0
        print("\n[broker lost the task] outbox queued it again: sms=1")
