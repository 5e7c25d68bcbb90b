"""Failover through the running stack: Ronglian down, back, or refusing for good, and Aliyun."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter

import pytest
import redis
import requests

from smscode.adapters import keys
from smscode_dev.embedded import free_port
from tests.conftest import stack_env
from tests.fakes.aliyun import (
    DEFAULT_KEY_ID,
    DEFAULT_SECRET,
    DEFAULT_SIGN_NAME,
    DEFAULT_TEMPLATE_CODE,
    FakeAliyun,
)
from tests.fakes.aliyun import Fault as AliyunFault
from tests.fakes.ronglian import FakeRonglian, Fault
from tests.helpers import Server, Worker, redis_db, started
from tests.integration.test_circuits import circuits as circuits_in
from tests.integration.test_faults_common import FAST, Sent, post_many, report, settle
from tests.integration.test_faults_worker_kill import kill_run

COOLDOWN = 2


@pytest.fixture
def redis_url(own_redis_url: str) -> str:
    """Each test's stack on a Redis of its own: only its workers may deliver its messages."""
    return own_redis_url


def failover_env(
    redis_url: str, ronglian: FakeRonglian, fake_aliyun: FakeAliyun, **overrides: str
) -> dict[str, str]:
    """The stack with both providers listed, a short cool-down, fast retries."""
    env = stack_env(
        redis_url, ronglian, SMS_PROVIDER="ronglian,aliyun",
        ALIYUN_ACCESS_KEY_ID=DEFAULT_KEY_ID, ALIYUN_ACCESS_KEY_SECRET=DEFAULT_SECRET,
        ALIYUN_SIGN_NAME=DEFAULT_SIGN_NAME, ALIYUN_TEMPLATE_CODE=DEFAULT_TEMPLATE_CODE,
        ALIYUN_ENDPOINT=fake_aliyun.endpoint, ALIYUN_CONNECT_TIMEOUT_SECONDS="0.5",
        ALIYUN_READ_TIMEOUT_SECONDS="0.5", ALIYUN_LOOKUP_DELAY_SECONDS="1",
        CIRCUIT_COOLDOWN_SECONDS=str(COOLDOWN), CELERY_BROKER_URL=redis_db(redis_url, 7),
        CELERY_QUEUE=f"failover-{uuid.uuid4().hex[:12]}", **FAST,
    )  # fmt: skip
    return env | overrides


def delivered(
    client: redis.Redis, api: str, sends: list[Sent]
) -> tuple[dict[str, str | None], list[str]]:
    """Each accepted send's provider (by phone) once every send is final, and the states."""
    settle(client, None, sends)
    providers, states = {}, []
    for send in sends:
        status = requests.get(f"{api}/codes/{send.request_id}", timeout=5).json()
        providers[send.phone] = status["provider"]
        states.append(status["state"])
    return providers, states


def circuits(api: str) -> dict[str, str | None]:
    body = requests.get(f"{api}/healthz", timeout=5).json()
    assert body["status"] == "ok"
    return {provider["name"]: provider["circuit"] for provider in body["providers"]}


@pytest.mark.slow
def test_ronglian_refusing_connections_fails_over_to_aliyun_and_traffic_returns_when_it_is_back(
    redis_client: redis.Redis, redis_url: str, fake_aliyun: FakeAliyun, fake_ronglian: FakeRonglian
) -> None:
    # given Ronglian listed first but nothing listening on its port (connection refused)
    port = free_port()
    env = failover_env(
        redis_url, fake_ronglian, fake_aliyun, RONGLIAN_BASE_URL=f"http://127.0.0.1:{port}"
    )
    server, worker = Server(env), Worker(env)
    with started(server, worker):
        # when 40 phones ask for a code
        down = post_many(server.url, 40)
        assert all(send.status == 202 for send in down)
        providers, states = delivered(redis_client, server.url, down)
        # then each send reached Aliyun exactly once, and its code verifies
        assert states == ["sent"] * 40
        assert set(providers.values()) == {"aliyun"}
        assert Counter(sms.to for sms in fake_aliyun.sent) == Counter(providers.keys())
        for send in down:
            [sms] = fake_aliyun.sms_to(send.phone)
            answer = requests.post(
                f"{server.url}/codes/verify",
                json={"phone": send.phone, "code": sms.code},
                timeout=5,
            )
            assert answer.status_code == 200, answer.text
        assert circuits(server.url) == {"ronglian": "open", "aliyun": "closed"}
        [opened] = [
            json.loads(line)
            for line in worker.output().splitlines()
            if "circuit ronglian: closed -> open" in line
        ]
        assert (opened["level"], opened["provider"], opened["circuit"]) == (
            "warning", "ronglian", "open",
        )  # fmt: skip

        # when Ronglian comes back on its port and the cool-down passes
        with FakeRonglian(port=port) as ronglian:
            time.sleep(COOLDOWN)
            probe = post_many(server.url, 1)
            providers_back, _ = delivered(redis_client, server.url, probe)
            back = post_many(server.url, 20)
            providers_back |= delivered(redis_client, server.url, back)[0]
            # then the probe closed its circuit and new sends go to Ronglian again
            assert set(providers_back.values()) == {"ronglian"}
            assert circuits(server.url) == {"ronglian": "closed", "aliyun": "closed"}
            # and across both providers no phone got two SMS
            everyone = Counter(sms.to for sms in fake_aliyun.sent) + Counter(
                sms.to for sms in ronglian.accepted
            )
            assert everyone == Counter(providers.keys()) + Counter(providers_back.keys())


@pytest.mark.slow
@pytest.mark.parametrize("order", ["ronglian,aliyun", "aliyun,ronglian"])
def test_a_provider_refusing_for_good_does_not_stop_delivery_while_another_is_listed(
    redis_client: redis.Redis,
    redis_url: str,
    fake_aliyun: FakeAliyun,
    fake_ronglian: FakeRonglian,
    order: str,
) -> None:
    # given the first listed provider refusing every send for good
    first, second = order.split(",")
    if first == "ronglian":
        fake_ronglian.set_policy(lambda _: (Fault.STATUS, "111142"))  # balance too low
    else:
        fake_aliyun.template_code = "SMS_NOT_OURS"  # our template is not approved there
    env = failover_env(redis_url, fake_ronglian, fake_aliyun, SMS_PROVIDER=order)
    server = Server(env)
    with started(server, Worker(env)):
        # when 15 phones ask for a code
        sends = post_many(server.url, 15)
        providers, states = delivered(redis_client, server.url, sends)
        # then every one is sent, once, by the other provider
        assert states == ["sent"] * 15
        assert set(providers.values()) == {second}
        assert circuits(server.url)[first] == "open"
    sms = [s.to for s in fake_aliyun.sent] + [s.to for s in fake_ronglian.accepted]
    assert Counter(sms) == Counter(providers.keys())


@pytest.mark.slow
def test_a_worker_that_does_not_list_aliyun_never_sends_a_message_pinned_there_elsewhere(
    redis_client: redis.Redis, redis_url: str, fake_aliyun: FakeAliyun, fake_ronglian: FakeRonglian
) -> None:
    # given a failover deployment whose send went to Aliyun (Ronglian refused, 160000) and
    # lost its answer after Aliyun sent it, the records not looked at yet
    fake_ronglian.script((Fault.STATUS, "160000"))
    fake_aliyun.script(AliyunFault.DROP_SENT)
    env = failover_env(redis_url, fake_ronglian, fake_aliyun)
    server = Server(env)
    with started(server):
        with started(Worker({**env, "ALIYUN_LOOKUP_DELAY_SECONDS": "600"})):
            [send] = post_many(server.url, 1)
            [sms] = fake_aliyun.wait_for(1)
        # when a worker listing Ronglian alone (the session's own stack, another deployment on
        # this Redis, or this one after SMS_PROVIDER changed) takes the message
        lone = Worker({**env, "SMS_PROVIDER": "ronglian"})
        with started(lone):
            deadline = time.monotonic() + 20
            while "does not list" not in lone.output() and not fake_ronglian.accepted:
                assert time.monotonic() < deadline, lone.output()
                time.sleep(0.1)
        # then it sends nothing: Aliyun may have sent the code, so no other provider may
        assert fake_ronglian.accepted == []
        # and a worker listing Aliyun again finds the SMS in its records: sent, once
        with started(Worker({**env, "ALIYUN_LOOKUP_DELAY_SECONDS": "0"})):
            providers, states = delivered(redis_client, server.url, [send])
        assert (states, providers) == (["sent"], {send.phone: "aliyun"})
        assert len(fake_aliyun.sent) == 1
        assert fake_ronglian.accepted == []
        verified = requests.post(
            f"{server.url}/codes/verify", json={"phone": send.phone, "code": sms.code}, timeout=5
        )
        assert verified.status_code == 200, verified.text


@pytest.mark.slow
def test_a_message_a_lone_provider_may_have_sent_stays_with_it_when_failover_takes_over(
    redis_client: redis.Redis, redis_url: str, fake_aliyun: FakeAliyun, fake_ronglian: FakeRonglian
) -> None:
    # given a worker listing Ronglian alone, killed while Ronglian had taken its send but not
    # answered yet
    fake_ronglian.script(Fault.SLOW_SENT)
    env = failover_env(redis_url, fake_ronglian, fake_aliyun, CIRCUIT_COOLDOWN_SECONDS="600")
    server, lone = Server(env), Worker({**env, "SMS_PROVIDER": "ronglian"})
    with started(server):
        with started(lone):
            [send] = post_many(server.url, 1)
            fake_ronglian.wait_for(1)
            lone.kill()
        # when failover takes the message over while Ronglian's circuit is open
        circuits_in(redis_client).record("ronglian", "trip")
        with started(Worker(env)):
            providers, states = delivered(redis_client, server.url, [send])
    # then it went back to Ronglian (its reqId made the repeat harmless), never to Aliyun
    assert (states, providers) == (["sent"], {send.phone: "ronglian"})
    [sms] = fake_ronglian.accepted
    assert fake_aliyun.sent == []
    # and, final, it no longer needs its pin: none is left behind
    assert redis_client.get(keys.pin(str(sms.req_id))) is None


@pytest.mark.slow
def test_aliyun_alone_looks_in_its_records_before_sending_again_after_a_lost_answer(
    redis_client: redis.Redis, redis_url: str, fake_aliyun: FakeAliyun, fake_ronglian: FakeRonglian
) -> None:
    # given Aliyun listed alone, losing its answer after it sent the SMS
    fake_aliyun.script(AliyunFault.DROP_SENT)
    env = failover_env(redis_url, fake_ronglian, fake_aliyun, SMS_PROVIDER="aliyun")
    server = Server(env)
    with started(server, Worker(env)):
        # when a phone asks for a code
        [send] = post_many(server.url, 1)
        providers, states = delivered(redis_client, server.url, [send])
        # then the retry found the SMS in Aliyun's records and sent no second one
        assert (states, providers) == (["sent"], {send.phone: "aliyun"})
        assert len(fake_aliyun.sent) == 1
        assert circuits(server.url) == {"aliyun": "closed"}  # it runs through failover


@pytest.mark.slow
def test_a_ronglian_answer_dripped_past_the_lease_then_refused_makes_no_second_sms(
    redis_client: redis.Redis,
    redis_url: str,
    fake_aliyun: FakeAliyun,
    fake_ronglian: FakeRonglian,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given Ronglian listed first, writing its answer to the first attempt (a refusal,
    # 160000: nothing sent) a byte every 0.1 s, well inside the 1 s read timeout, for longer
    # than the delivery lease, until another attempt at the message comes in; and answering
    # that attempt 0.8 s after it took the SMS
    fake_ronglian.script((Fault.DRIP, "160000"), Fault.SLOW_SENT)
    monkeypatch.setattr(fake_ronglian, "slow_seconds", 0.8)
    env = failover_env(
        redis_url, fake_ronglian, fake_aliyun,
        RONGLIAN_READ_TIMEOUT_SECONDS="1", DELIVERY_RECHECK_SECONDS="2",
    )  # fmt: skip
    server = Server(env)
    # when a phone asks for a code, with two workers to take the message (over)
    with started(server, Worker(env), Worker(env)):
        [send] = post_many(server.url, 1)
        providers, states = delivered(redis_client, server.url, [send])
    # then the phone got exactly one SMS, from Ronglian, whose first answer never counted
    assert (len(fake_ronglian.accepted), len(fake_aliyun.sent)) == (1, 0)
    assert (states, providers) == (["sent"], {send.phone: "ronglian"})


@pytest.mark.slow
def test_aliyuns_records_are_looked_at_a_delay_after_its_late_answer_not_after_the_call(
    redis_client: redis.Redis, redis_url: str, fake_aliyun: FakeAliyun, fake_ronglian: FakeRonglian
) -> None:
    # given Aliyun alone, sending the SMS but answering only after our read timeout (2 s),
    # its records showing the SMS 3 s after it went out, and lookups waiting 2 s
    fake_aliyun.script(AliyunFault.SLOW_SENT)
    fake_aliyun.slow_seconds, fake_aliyun.records_delay = 5, 3
    env = failover_env(
        redis_url, fake_ronglian, fake_aliyun, SMS_PROVIDER="aliyun",
        ALIYUN_READ_TIMEOUT_SECONDS="2", ALIYUN_LOOKUP_DELAY_SECONDS="2",
    )  # fmt: skip
    server = Server(env)
    with started(server, Worker(env)):
        # when a phone asks for a code
        [send] = post_many(server.url, 1)
        providers, states = delivered(redis_client, server.url, [send])
    # then the retry waited 2 s from the timed-out answer, found the SMS and sent no other
    assert (states, providers) == (["sent"], {send.phone: "aliyun"})
    assert len(fake_aliyun.sent) == 1


class BothFakes:
    """The two fakes seen as one, for the kill test's counts: an SMS at either is one SMS."""

    def __init__(self, ronglian: FakeRonglian, aliyun: FakeAliyun) -> None:
        self.ronglian, self.aliyun = ronglian, aliyun

    @property
    def accepted(self) -> list[object]:
        return [*self.ronglian.accepted, *self.aliyun.sent]

    @property
    def requests(self) -> list[object]:
        return [*self.ronglian.requests, *self.aliyun.requests]

    @property
    def latency(self) -> float:
        return self.ronglian.latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        self.ronglian.latency = self.aliyun.latency = seconds


@pytest.mark.slow
def test_failover_with_faults_at_both_providers_and_worker_kills_sends_each_code_once(
    redis_client: redis.Redis, redis_url: str, fake_aliyun: FakeAliyun, fake_ronglian: FakeRonglian
) -> None:
    # given Ronglian refusing (160000), answering 172001 / HTTP 500 or losing its answer after
    # sending on 40 % of calls, and Aliyun failing 30 % of its calls, half of them after sending
    fake_ronglian.chaos(
        0.4, [(Fault.STATUS, "160000"), (Fault.STATUS, "172001"), Fault.HTTP_500, Fault.DROP_SENT]
    )
    fake_aliyun.chaos(
        0.3,
        [
            AliyunFault.ERROR_SENT, AliyunFault.DROP_SENT, AliyunFault.DROP_UNSENT,
            (AliyunFault.CODE, "ServiceUnavailable"),
        ],
    )  # fmt: skip
    env = failover_env(
        redis_url, fake_ronglian, fake_aliyun, CELERY_BROKER_URL=redis_db(redis_url, 8)
    )
    env.pop("CELERY_QUEUE")  # kill_run's settle watches the default queue of its broker
    broker = redis.Redis.from_url(env["CELERY_BROKER_URL"], decode_responses=True)
    broker.flushdb()
    try:
        # when 200 phones ask while the worker is SIGKILLed every 1-3 s
        counts, kills = kill_run(
            redis_client, broker, BothFakes(fake_ronglian, fake_aliyun), env,  # type: ignore[arg-type]
            sends_count=200, pause=(1.0, 3.0),
        )  # fmt: skip
    finally:
        broker.flushdb()
        broker.close()
    report(f"failover, faults at both, worker SIGKILLed {kills} times", counts, fake_ronglian)
    print(f"  at Ronglian {len(fake_ronglian.accepted)}, at Aliyun {len(fake_aliyun.sent)}")
    # then every accepted send got exactly one SMS, at one provider or the other
    assert counts.accepted == 200
    assert counts.lost == 0
    assert counts.duplicates == 0
