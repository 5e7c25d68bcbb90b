"""The circuit breaker and the provider pins on the real Redis, and failover over the fakes."""

from __future__ import annotations

import time
import uuid

import pytest
import redis

from smscode.adapters import keys
from smscode.adapters.providers.aliyun import AliyunProvider
from smscode.adapters.providers.aliyun import Credentials as AliyunCredentials
from smscode.adapters.providers.ronglian import Credentials, RonglianProvider
from smscode.adapters.redis_circuits import RedisCircuits
from smscode.domain.outcomes import Failed, MaybeSent, NotSent, Sent, Sms
from smscode.service_layer.failover import Failover, Route
from smscode_dev.embedded import free_port
from tests.fakes.aliyun import DEFAULT_KEY_ID, DEFAULT_SECRET, FakeAliyun
from tests.fakes.aliyun import Fault as AliyunFault
from tests.fakes.ronglian import DEFAULT_ACC_ID, DEFAULT_ACC_TOKEN, DEFAULT_APP_ID, FakeRonglian
from tests.fakes.ronglian import Fault as RonglianFault
from tests.helpers import fresh_phone


def circuits(client: redis.Redis, cooldown: float = 0.3) -> RedisCircuits:
    return RedisCircuits(
        client, threshold=3, window_seconds=10, cooldown_seconds=cooldown,
        probe_seconds=5, pin_ttl_seconds=60,
    )  # fmt: skip


def test_a_circuit_opens_after_n_failures_in_a_row_and_lets_one_probe_after_the_cooldown(
    redis_client: redis.Redis,
) -> None:
    breaker, other = circuits(redis_client), circuits(redis_client)  # two workers
    name = f"p{uuid.uuid4().hex[:8]}"
    assert breaker.record(name, "failure") == ("closed", "closed")
    assert breaker.record(name, "success") == ("closed", "closed")  # the count restarts
    assert breaker.record(name, "failure") == ("closed", "closed")
    assert breaker.record(name, "failure") == ("closed", "closed")
    assert other.record(name, "failure") == ("closed", "open")  # shared across workers
    assert other.allow(name) == (False, ("open", "open"))
    assert breaker.states((name,)) == {name: "open"}
    time.sleep(0.4)
    assert breaker.allow(name) == (True, ("open", "half_open"))  # the one probe
    assert other.allow(name) == (False, ("half_open", "half_open"))
    assert breaker.record(name, "success") == ("half_open", "closed")
    assert other.allow(name) == (True, ("closed", "closed"))


def test_a_failed_probe_reopens_and_a_permanent_refusal_opens_at_once(
    redis_client: redis.Redis,
) -> None:
    breaker = circuits(redis_client)
    name = f"p{uuid.uuid4().hex[:8]}"
    assert breaker.record(name, "trip") == ("closed", "open")
    time.sleep(0.4)
    assert breaker.allow(name)[0]
    assert breaker.record(name, "failure") == ("half_open", "open")
    assert not breaker.allow(name)[0]  # a fresh cool-down


class Counted:
    """The failover metrics, kept."""

    def __init__(self) -> None:
        self.changes: list[tuple[str, str]] = []
        self.resends: list[str] = []

    def circuit_changed(self, provider: str, state: str) -> None:
        self.changes.append((provider, state))

    def resent_after_lookup(self, provider: str) -> None:
        self.resends.append(provider)


def ronglian_at(base_url: str) -> RonglianProvider:
    creds = Credentials(acc_id=DEFAULT_ACC_ID, acc_token=DEFAULT_ACC_TOKEN, app_id=DEFAULT_APP_ID)
    return RonglianProvider(
        creds, template_id="1", base_url=base_url, connect_timeout=0.5, read_timeout=0.5
    )


def failover(
    client: redis.Redis, ronglian_url: str, fake_aliyun: FakeAliyun, metrics: Counted
) -> Failover:
    provider = AliyunProvider(
        AliyunCredentials(DEFAULT_KEY_ID, DEFAULT_SECRET), sign_name="阿里云短信测试",
        template_code="SMS_154950909", endpoint=fake_aliyun.endpoint,
        connect_timeout=0.5, read_timeout=0.5,
    )  # fmt: skip
    routes = [
        Route("ronglian", ronglian_at(ronglian_url)),
        Route("aliyun", provider, provider.find),
    ]
    return Failover(routes, circuits(client, cooldown=30), metrics, lookup_delay_seconds=0.2)


def leased(client: redis.Redis) -> Sms:
    """A fresh send whose delivery lease is held, as the Deliverer holds it."""
    sms = Sms(to=f"+86{fresh_phone()}", code="123456", minutes=5, key=uuid.uuid4().hex)
    client.set(keys.lease(str(sms.key)), "token", px=30_000)
    return sms


def test_ronglian_refused_goes_to_aliyun_once_and_opens_ronglians_circuit(
    redis_client: redis.Redis, fake_aliyun: FakeAliyun
) -> None:
    metrics = Counted()
    both = failover(redis_client, f"http://127.0.0.1:{free_port()}", fake_aliyun, metrics)
    results = [both.send(leased(redis_client)) for _ in range(4)]
    assert all(isinstance(r, Sent) and r.provider == "aliyun" for r in results)
    assert len(fake_aliyun.sent) == 4
    assert metrics.changes == [("ronglian", "open")]  # 3 refusals, then skipped


def test_a_permanent_refusal_moves_the_send_on(
    redis_client: redis.Redis, fake_aliyun: FakeAliyun, fake_ronglian: FakeRonglian
) -> None:
    fake_ronglian.script((RonglianFault.STATUS, "111142"))  # balance too low
    metrics = Counted()
    result = failover(redis_client, fake_ronglian.base_url, fake_aliyun, metrics).send(
        leased(redis_client)
    )
    assert isinstance(result, Sent)
    assert result.provider == "aliyun"
    assert metrics.changes == [("ronglian", "open")]


def test_a_refusal_about_one_number_never_opens_the_circuit(
    redis_client: redis.Redis, fake_aliyun: FakeAliyun, fake_ronglian: FakeRonglian
) -> None:
    # given sends to numbers Ronglian refuses for themselves (bad format, per-number caps),
    # more of them than the breaker's threshold: an attacker's cheap way to cut everyone off
    metrics = Counted()
    both = failover(redis_client, fake_ronglian.base_url, fake_aliyun, metrics)
    for code in ("160042", "160040", "160038", "160042"):
        fake_ronglian.script((RonglianFault.STATUS, code))
        both.send(leased(redis_client))
    # then Ronglian's circuit stays closed and the next real send goes to Ronglian
    assert metrics.changes == []
    result = both.send(leased(redis_client))
    assert isinstance(result, Sent)
    assert result.provider == "ronglian"


def test_after_an_ambiguous_answer_the_send_stays_with_that_provider(
    redis_client: redis.Redis, fake_aliyun: FakeAliyun, fake_ronglian: FakeRonglian
) -> None:
    both = failover(redis_client, fake_ronglian.base_url, fake_aliyun, Counted())
    sms = leased(redis_client)
    fake_ronglian.script(RonglianFault.HTTP_500)  # to us, maybe sent
    assert isinstance(both.send(sms), MaybeSent)
    fake_ronglian.script((RonglianFault.STATUS, "160000"))  # now a certain refusal...
    assert isinstance(both.send(sms), NotSent)
    assert fake_aliyun.sent == []  # ...but the first try may have sent: never Aliyun now
    result = both.send(sms)
    assert isinstance(result, Sent)
    assert result.provider == "ronglian"
    assert len(fake_ronglian.sms_to(sms.to)) == 1


@pytest.mark.parametrize(
    ("fault", "repeat", "resends"),
    [(AliyunFault.ERROR_SENT, True, []), (AliyunFault.DROP_UNSENT, False, ["aliyun"])],
)
def test_after_an_ambiguous_aliyun_answer_its_records_decide_whether_to_resend(
    redis_client: redis.Redis,
    fake_aliyun: FakeAliyun,
    fault: AliyunFault,
    repeat: bool,
    resends: list[str],
) -> None:
    metrics = Counted()
    both = failover(redis_client, f"http://127.0.0.1:{free_port()}", fake_aliyun, metrics)
    sms = leased(redis_client)
    fake_aliyun.script(fault)
    assert isinstance(both.send(sms), MaybeSent)
    assert isinstance(both.send(sms), MaybeSent)  # too early to trust the records
    time.sleep(0.3)
    result = both.send(sms)
    assert isinstance(result, Sent)
    assert result.repeat is repeat
    assert len(fake_aliyun.sms_to(sms.to)) == 1
    assert metrics.resends == resends


def test_every_provider_refusing_for_good_fails_the_send(
    redis_client: redis.Redis, fake_aliyun: FakeAliyun, fake_ronglian: FakeRonglian
) -> None:
    fake_ronglian.script((RonglianFault.STATUS, "160042"))  # bad number format
    fake_aliyun.template_code = "SMS_999"  # ours is not approved there
    both = failover(redis_client, fake_ronglian.base_url, fake_aliyun, Counted())
    sms = leased(redis_client)
    result = both.send(sms)
    assert isinstance(result, Failed)
    assert result.status_code == "isv.SMS_TEMPLATE_ILLEGAL"
    assert redis_client.get(keys.pin(str(sms.key))) is None


def test_records_lagging_past_the_lookup_delay_are_the_residual_risk_and_are_counted(
    redis_client: redis.Redis, fake_aliyun: FakeAliyun
) -> None:
    # given Aliyun's records showing an SMS only 30 s after it went out (lookup delay: 0.2 s)
    fake_aliyun.records_delay = 30
    metrics = Counted()
    both = failover(redis_client, f"http://127.0.0.1:{free_port()}", fake_aliyun, metrics)
    sms = leased(redis_client)
    fake_aliyun.script(AliyunFault.DROP_SENT)
    assert isinstance(both.send(sms), MaybeSent)
    time.sleep(0.3)
    # when the send is retried, the records still show nothing
    assert isinstance(both.send(sms), Sent)
    # then the phone gets a second SMS, and the metric says so
    assert len(fake_aliyun.sms_to(sms.to)) == 2
    assert metrics.resends == ["aliyun"]
