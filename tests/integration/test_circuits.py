"""The circuit breaker and the provider pins on the real Redis, and failover over the fakes."""

from __future__ import annotations

import math
import time
import uuid
from typing import Literal

import pytest
import redis

from smscode.adapters import keys
from smscode.adapters.providers.aliyun import AliyunProvider
from smscode.adapters.providers.aliyun import Credentials as AliyunCredentials
from smscode.adapters.providers.ronglian import Credentials, RonglianProvider
from smscode.adapters.redis_circuits import RedisCircuits
from smscode.domain.errors import Unavailable
from smscode.domain.outcomes import Failed, MaybeSent, NotSent, Sent, Sms
from smscode.service_layer.failover import Failover, Route
from smscode.service_layer.ports import Change, CircuitState, CircuitStore, Lease, Pin
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
    client: redis.Redis,
    ronglian_url: str,
    fake_aliyun: FakeAliyun,
    metrics: Counted,
    store: CircuitStore | None = None,
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
    store = store or circuits(client, cooldown=30)
    return Failover(routes, store, metrics, lookup_delay_seconds=0.2)


LEASE = Lease(token="token", deadline=math.inf)


def leased(client: redis.Redis) -> Sms:
    """A fresh send whose delivery lease (LEASE) is held, as the Deliverer holds it."""
    sms = Sms(to=f"+86{fresh_phone()}", code="123456", minutes=5, key=uuid.uuid4().hex)
    client.set(keys.lease(str(sms.key)), LEASE.token, px=30_000)
    return sms


def test_ronglian_refused_goes_to_aliyun_once_and_opens_ronglians_circuit(
    redis_client: redis.Redis, fake_aliyun: FakeAliyun
) -> None:
    metrics = Counted()
    both = failover(redis_client, f"http://127.0.0.1:{free_port()}", fake_aliyun, metrics)
    results = [both.send(leased(redis_client), LEASE) for _ in range(4)]
    assert all(isinstance(r, Sent) and r.provider == "aliyun" for r in results)
    assert len(fake_aliyun.sent) == 4
    assert metrics.changes == [("ronglian", "open")]  # 3 refusals, then skipped


def test_a_permanent_refusal_moves_the_send_on(
    redis_client: redis.Redis, fake_aliyun: FakeAliyun, fake_ronglian: FakeRonglian
) -> None:
    fake_ronglian.script((RonglianFault.STATUS, "111142"))  # balance too low
    metrics = Counted()
    result = failover(redis_client, fake_ronglian.base_url, fake_aliyun, metrics).send(
        leased(redis_client), LEASE
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
        both.send(leased(redis_client), LEASE)
    # then Ronglian's circuit stays closed and the next real send goes to Ronglian
    assert metrics.changes == []
    result = both.send(leased(redis_client), LEASE)
    assert isinstance(result, Sent)
    assert result.provider == "ronglian"


def test_after_an_ambiguous_answer_the_send_stays_with_that_provider(
    redis_client: redis.Redis, fake_aliyun: FakeAliyun, fake_ronglian: FakeRonglian
) -> None:
    both = failover(redis_client, fake_ronglian.base_url, fake_aliyun, Counted())
    sms = leased(redis_client)
    fake_ronglian.script(RonglianFault.HTTP_500)  # to us, maybe sent
    assert isinstance(both.send(sms, LEASE), MaybeSent)
    fake_ronglian.script((RonglianFault.STATUS, "160000"))  # now a certain refusal...
    assert isinstance(both.send(sms, LEASE), NotSent)
    assert fake_aliyun.sent == []  # ...but the first try may have sent: never Aliyun now
    result = both.send(sms, LEASE)
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
    assert isinstance(both.send(sms, LEASE), MaybeSent)
    assert isinstance(both.send(sms, LEASE), MaybeSent)  # too early to trust the records
    time.sleep(0.3)
    result = both.send(sms, LEASE)
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
    result = both.send(sms, LEASE)
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
    assert isinstance(both.send(sms, LEASE), MaybeSent)
    time.sleep(0.3)
    # when the send is retried, the records still show nothing
    assert isinstance(both.send(sms, LEASE), Sent)
    # then the phone gets a second SMS, and the metric says so
    assert len(fake_aliyun.sms_to(sms.to)) == 2
    assert metrics.resends == ["aliyun"]


# -- the pin is fenced by the delivery lease ------------------------------------------------


def test_a_worker_whose_lease_lapsed_can_neither_move_nor_drop_the_pin(
    redis_client: redis.Redis,
) -> None:
    # given worker A's lease lapsed mid-call, and worker B took the message over (as
    # claim.lua takes a lease) and pinned it to Ronglian for its own call
    pins, key = circuits(redis_client), uuid.uuid4().hex
    redis_client.set(keys.lease(key), "a", px=50)
    time.sleep(0.1)
    assert redis_client.set(keys.lease(key), "b", nx=True, px=30_000)
    assert pins.pin(key, "ronglian", token="b", previous=None)
    # when A, refused at last by Ronglian, moves on to Aliyun, then gives up
    assert not pins.pin(key, "aliyun", token="a", previous="ronglian")
    pins.unpin(key, "ronglian", token="a")
    # then B's pin stands: every attempt stays with Ronglian, whose reqId makes a repeat harmless
    pin = pins.pinned(key)
    assert pin is not None
    assert pin.provider == "ronglian"
    # and even B cannot pin over a pin it did not see (compare-and-set)
    assert not pins.pin(key, "aliyun", token="b", previous=None)
    assert pins.pin(key, "aliyun", token="b", previous="ronglian")


def test_an_ambiguous_answer_re_stamps_the_pin_on_redis_clock(redis_client: redis.Redis) -> None:
    pins, key = circuits(redis_client), uuid.uuid4().hex
    redis_client.set(keys.lease(key), "t", px=30_000)
    assert pins.pin(key, "aliyun", token="t", previous=None)
    time.sleep(0.3)
    before = pins.pinned(key)
    pins.restamp(key, "aliyun")
    after = pins.pinned(key)
    assert before is not None
    assert after is not None
    assert before.age >= 0.3 > after.age
    assert after.at > before.at
    pins.restamp(key, "ronglian")  # a pin to another provider is left as it is
    assert redis_client.get(keys.pin(key)) == f"aliyun:{round(after.at * 1000)}"


class RedisDownFor:
    """The real circuits on Redis, but Redis out of reach for one kind of call: `allow` of
    one provider (a failover, or a blip, between two steps of an attempt)."""

    def __init__(self, real: RedisCircuits, provider: str) -> None:
        self._real, self._provider = real, provider

    def allow(self, provider: str) -> tuple[bool, Change]:
        if provider == self._provider:
            raise Unavailable("The code store is unavailable; please try again shortly.")
        return self._real.allow(provider)

    def record(self, provider: str, outcome: Literal["success", "failure", "trip"]) -> Change:
        return self._real.record(provider, outcome)

    def states(self, providers: tuple[str, ...]) -> dict[str, CircuitState]:
        return self._real.states(providers)

    def pinned(self, key: str) -> Pin | None:
        return self._real.pinned(key)

    def pin(self, key: str, provider: str, *, token: str, previous: str | None) -> bool:
        return self._real.pin(key, provider, token=token, previous=previous)

    def restamp(self, key: str, provider: str) -> None:
        self._real.restamp(key, provider)

    def unpin(self, key: str, provider: str, *, token: str) -> None:
        self._real.unpin(key, provider, token=token)


def test_a_redis_blip_between_a_refusal_and_the_next_provider_leaves_no_stale_pin(
    redis_client: redis.Redis, fake_aliyun: FakeAliyun, fake_ronglian: FakeRonglian
) -> None:
    # given Ronglian refusing (nothing sent), and Redis out of reach just as the attempt
    # asks whether Aliyun's circuit allows a call
    fake_ronglian.set_policy(lambda _: (RonglianFault.STATUS, "160000"))
    sms = leased(redis_client)
    down = RedisDownFor(circuits(redis_client, cooldown=30), "aliyun")
    blip = failover(redis_client, fake_ronglian.base_url, fake_aliyun, Counted(), down)
    with pytest.raises(Unavailable):
        blip.send(sms, LEASE)
    # then the pin to Ronglian, which surely did not send, is gone
    assert redis_client.get(keys.pin(str(sms.key))) is None
    # and once Redis is back the send fails over to Aliyun, instead of staying with Ronglian
    result = failover(redis_client, fake_ronglian.base_url, fake_aliyun, Counted()).send(sms, LEASE)
    assert isinstance(result, Sent)
    assert result.provider == "aliyun"
    assert fake_ronglian.accepted == []
