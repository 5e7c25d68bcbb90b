"""A message whose code was replaced, burned or verified before delivery: no SMS, `skipped`."""

from __future__ import annotations

import base64
import json
import time

import pytest
import redis
import requests

from smscode.domain.messages import DeliveryMessage
from smscode.domain.sealing import Sealer
from tests.conftest import CODE_SECRET, stack_env
from tests.fakes.ronglian import FakeRonglian
from tests.helpers import Server, Worker, emptied, fresh_phone, redis_db, started
from tests.integration.test_faults_common import FAST, post, settle


def queued_messages(broker: redis.Redis) -> list[DeliveryMessage]:
    """The delivery messages waiting in the Celery queue, oldest first (as a worker sees them)."""
    messages = []
    for raw in reversed(broker.lrange("celery", 0, -1)):
        envelope = json.loads(raw)
        args, _, _ = json.loads(base64.b64decode(envelope["body"]))
        messages.append(DeliveryMessage.from_json(args[0]))
    return messages


def state(api: str, request_id: str | None) -> str:
    """GET /codes/{request_id}: the state of one send."""
    answer = requests.get(f"{api}/codes/{request_id}", timeout=5)
    assert answer.status_code == 200, answer.text
    assert "****" in answer.json()["phone"]
    return str(answer.json()["state"])


@pytest.mark.slow
def test_replaced_burned_and_verified_codes_are_skipped_without_an_sms(
    redis_client: redis.Redis, redis_url: str, fake_ronglian: FakeRonglian
) -> None:
    # given three phones whose messages wait in the queue (no worker yet)
    broker_url = redis_db(redis_url, 11)
    with emptied(broker_url) as broker:
        env = stack_env(
            redis_url, fake_ronglian, CELERY_BROKER_URL=broker_url, RESEND_INTERVAL_SECONDS="0",
            **FAST,
        )  # fmt: skip
        replaced, burned, verified = fresh_phone(), fresh_phone(), fresh_phone()
        server = Server(env)
        with started(server):
            api = server.url
            first, second = post(api, replaced), post(api, replaced)  # the second replaces
            doomed = post(api, burned)
            for _ in range(5):
                requests.post(
                    f"{api}/codes/verify", json={"phone": burned, "code": "0" * 6}, timeout=5
                )
            checked = post(api, verified)
            # the user types the code before the SMS leaves (read here from the queue)
            [message] = [m for m in queued_messages(broker) if m.request_id == checked.request_id]
            code = Sealer(CODE_SECRET.encode()).open(message.sealed_code, message.message_id)
            ok = requests.post(
                f"{api}/codes/verify", json={"phone": verified, "code": code}, timeout=5
            )
            assert ok.status_code == 200
            sends = [first, second, doomed, checked]
            assert all(send.status == 202 for send in sends)
            # when the worker delivers the queue
            with started(Worker(env)):
                settle(redis_client, broker, sends)
                states = [state(api, send.request_id) for send in sends]
        # then
        print(f"\n[stale] states={states} sms={[sms.to for sms in fake_ronglian.accepted]}")
        assert states == ["skipped", "sent", "skipped", "skipped"]
        assert [sms.to for sms in fake_ronglian.accepted] == [replaced]


@pytest.mark.slow
def test_a_message_still_queued_when_its_code_expires_is_never_sent(
    redis_client: redis.Redis, redis_url: str, fake_ronglian: FakeRonglian
) -> None:
    # given a 30 s code whose message waits in the queue (no worker) until the code expired
    broker_url = redis_db(redis_url, 12)
    with emptied(broker_url) as broker:
        env = stack_env(
            redis_url, fake_ronglian, CELERY_BROKER_URL=broker_url, CODE_TTL_SECONDS="30", **FAST
        )
        # The session's shared worker sweeps the same outbox: with FAST's 5 s it would queue this
        # message again on its own broker and send it before it expired.
        env["DELIVERY_RECHECK_SECONDS"] = "3600"
        server = Server(env)
        with started(server):
            sent = post(server.url, fresh_phone())
            assert sent.status == 202
            [message] = queued_messages(broker)
            time.sleep(max(0.0, message.expires_at.timestamp() - time.time()) + 0.5)
            # when a worker finally takes it
            with started(Worker(env)):
                settle(redis_client, broker, [sent])
                final = state(server.url, sent.request_id)
        # then
        print(f"\n[expired in the queue] state={final} sms={len(fake_ronglian.accepted)}")
        assert final == "expired"
        assert fake_ronglian.requests == []
