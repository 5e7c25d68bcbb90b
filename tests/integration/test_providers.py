"""Every Provider passes one classification suite, each against its fake.

A provider joins by adding one entry to CASES: a class that builds the provider against
its fake, lists the answers its fake can be made to give (SCENARIOS' names, each with one or
more ways to arrange it) and counts what the fake received.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Protocol

import pytest

from smscode.adapters.providers.aliyun import LOOKUP_PAGE_SIZE, LOOKUP_PAGES, AliyunProvider
from smscode.adapters.providers.aliyun import Credentials as AliyunCredentials
from smscode.adapters.providers.console import ConsoleProvider
from smscode.adapters.providers.ronglian import Credentials, RonglianProvider
from smscode.domain.outcomes import Failed, MaybeSent, NotSent, Result, Sent, Sms
from smscode.service_layer.ports import Provider
from smscode_dev.embedded import free_port
from tests.fakes.aliyun import (
    DEFAULT_KEY_ID,
    DEFAULT_SECRET,
    DEFAULT_SIGN_NAME,
    DEFAULT_TEMPLATE_CODE,
    FakeAliyun,
)
from tests.fakes.aliyun import Fault as AliyunFault
from tests.fakes.ronglian import (
    DEFAULT_ACC_ID,
    DEFAULT_ACC_TOKEN,
    DEFAULT_APP_ID,
    FakeRonglian,
    Fault,
)
from tests.helpers import NO_LEASE, fresh_phone

# What each kind of answer must classify as, and how many SMS the fake then holds.
SCENARIOS: dict[str, tuple[type[Result], int]] = {
    "accepted": (Sent, 1),
    "refused_for_good": (Failed, 0),  # number, template, account, balance, caps
    "refused_for_now": (NotSent, 0),  # a retryable refusal: surely not sent
    "answer_lost_after_sending": (MaybeSent, 1),
    "answer_lost_before_sending": (MaybeSent, 0),  # the client cannot tell it from the above
    "answered_too_late": (MaybeSent, 1),  # after our read timeout
    # a byte at a time, each inside the read timeout, the whole past the call's time
    "answer_dripped_past_the_call": (MaybeSent, 0),
    "server_error": (MaybeSent, 0),
    "server_error_after_sending": (MaybeSent, 1),
    "garbled_answer": (MaybeSent, 0),
}
READ_TIMEOUT = 0.5


class ProviderCase(Protocol):
    """One provider against its fake."""

    SCENARIOS: ClassVar[Mapping[str, Sequence[Any]]]  # scenario -> ways to arrange it
    DEDUPLICATES: ClassVar[bool]  # sends one SMS per `Sms.key`

    def __init__(self, request: pytest.FixtureRequest) -> None:
        """Take the fake from its fixture (`request.getfixturevalue`)."""

    def provider(self) -> Provider: ...

    def unreachable(self) -> Provider | None:
        """The provider aimed at a closed port (None: it needs no network)."""

    def arrange(self, how: Any) -> None:
        """Make the fake give the next request this answer."""

    def received(self) -> int:
        """How many SMS the fake holds (it starts each test empty)."""


class RonglianCase:
    """RonglianProvider against tests/fakes/ronglian.py (the real protocol and signature)."""

    SCENARIOS: ClassVar[Mapping[str, Sequence[Any]]] = {
        "accepted": [Fault.OK],
        "refused_for_good": [(Fault.STATUS, code) for code in ("160038", "160042", "111142")],
        "refused_for_now": [(Fault.STATUS, "160050")],
        "answer_lost_after_sending": [Fault.DROP_SENT],
        "answer_lost_before_sending": [Fault.DROP_UNSENT],
        "answered_too_late": [Fault.SLOW_SENT],
        "answer_dripped_past_the_call": [(Fault.DRIP, "160000")],
        "server_error": [Fault.HTTP_500],
        "garbled_answer": [Fault.GARBAGE],
    }
    DEDUPLICATES: ClassVar[bool] = True

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self.fake: FakeRonglian = request.getfixturevalue("fake_ronglian")
        monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
        monkeypatch.setattr(self.fake, "slow_seconds", READ_TIMEOUT * 2)

    @staticmethod
    def at(base_url: str) -> RonglianProvider:
        creds = Credentials(
            acc_id=DEFAULT_ACC_ID, acc_token=DEFAULT_ACC_TOKEN, app_id=DEFAULT_APP_ID
        )
        return RonglianProvider(
            creds,
            template_id="1",
            base_url=base_url,
            connect_timeout=0.5,
            read_timeout=READ_TIMEOUT,
        )

    def provider(self) -> Provider:
        return self.at(self.fake.base_url)

    def unreachable(self) -> Provider | None:
        return self.at(f"http://127.0.0.1:{free_port()}")

    def arrange(self, how: Any) -> None:
        self.fake.script(how)

    def received(self) -> int:
        return len(self.fake.accepted)


# Codes the fake answers as told (the ones it answers by itself are arranged below them).
ALIYUN_REFUSED_FOR_GOOD = (
    "isv.MOBILE_NUMBER_ILLEGAL", "isv.AMOUNT_NOT_ENOUGH", "isv.DAY_LIMIT_CONTROL",
    "isv.OUT_OF_SERVICE", "SignatureDoesNotMatch",
)  # fmt: skip
ALIYUN_REFUSED_FOR_NOW = ("isv.BUSINESS_LIMIT_CONTROL", "Throttling.User", "ServiceUnavailable")


def _aliyun_refusing_our_key(fake: FakeAliyun) -> None:
    fake.secrets = {}  # InvalidAccessKeyId.NotFound, HTTP 404


def _aliyun_refusing_our_template(fake: FakeAliyun) -> None:
    fake.template_code = "SMS_0"  # isv.SMS_TEMPLATE_ILLEGAL, HTTP 200


def _aliyun_refusing_our_signature_name(fake: FakeAliyun) -> None:
    fake.sign_name = "another"  # isv.SMS_SIGNATURE_ILLEGAL, HTTP 200


def _aliyun_an_hour_ahead(fake: FakeAliyun) -> None:
    fake.clock = lambda: datetime.now(UTC) + timedelta(hours=1)  # InvalidTimeStamp.Expired


class AliyunCase:
    """AliyunProvider against tests/fakes/aliyun.py (RPC v1 signature, timestamp, nonce).

    A way is a fault to script or a function that reconfigures the fake (the fixture puts
    its settings back after the test). Aliyun never deduplicates, `OutId` included.
    """

    SCENARIOS: ClassVar[Mapping[str, Sequence[Any]]] = {
        "accepted": [AliyunFault.OK],
        "refused_for_good": [
            *((AliyunFault.CODE, code) for code in ALIYUN_REFUSED_FOR_GOOD),
            _aliyun_refusing_our_key,
            _aliyun_refusing_our_template,
            _aliyun_refusing_our_signature_name,
        ],
        "refused_for_now": [
            *((AliyunFault.CODE, code) for code in ALIYUN_REFUSED_FOR_NOW),
            _aliyun_an_hour_ahead,
        ],
        "answer_lost_after_sending": [AliyunFault.DROP_SENT],
        "answer_lost_before_sending": [AliyunFault.DROP_UNSENT],
        "answered_too_late": [AliyunFault.SLOW_SENT],
        "server_error": [
            (AliyunFault.CODE, "InternalError"),
            (AliyunFault.CODE, "isp.SYSTEM_ERROR"),
        ],
        "server_error_after_sending": [AliyunFault.ERROR_SENT],
    }
    DEDUPLICATES: ClassVar[bool] = False

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self.fake: FakeAliyun = request.getfixturevalue("fake_aliyun")
        self.fake.slow_seconds = READ_TIMEOUT * 2

    @staticmethod
    def at(endpoint: str) -> AliyunProvider:
        return AliyunProvider(
            AliyunCredentials(DEFAULT_KEY_ID, DEFAULT_SECRET),
            sign_name=DEFAULT_SIGN_NAME,
            template_code=DEFAULT_TEMPLATE_CODE,
            endpoint=endpoint,
            connect_timeout=0.5,
            read_timeout=READ_TIMEOUT,
        )

    def provider(self) -> Provider:
        return self.at(self.fake.endpoint)

    def unreachable(self) -> Provider | None:
        return self.at(f"http://127.0.0.1:{free_port()}")

    def arrange(self, how: Any) -> None:
        if callable(how):
            how(self.fake)
        else:
            self.fake.script(how)

    def received(self) -> int:
        return len(self.fake.sent)


class ConsoleCase:
    """ConsoleProvider: its "fake" is the process's stdout."""

    SCENARIOS: ClassVar[Mapping[str, Sequence[Any]]] = {"accepted": [None]}
    DEDUPLICATES: ClassVar[bool] = False

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self.capsys: pytest.CaptureFixture[str] = request.getfixturevalue("capsys")
        self.printed = ""

    def provider(self) -> Provider:
        return ConsoleProvider()

    def unreachable(self) -> Provider | None:
        return None

    def arrange(self, how: Any) -> None:
        assert how is None

    def received(self) -> int:
        self.printed += self.capsys.readouterr().out
        return self.printed.count("[smscode console] SMS to ")


# One entry per provider: its name as SMS_PROVIDER spells it, and its case.
CASES: dict[str, type[ProviderCase]] = {
    "aliyun": AliyunCase,
    "console": ConsoleCase,
    "ronglian": RonglianCase,
}


@pytest.fixture(params=sorted(CASES))
def provider_case(request: pytest.FixtureRequest) -> ProviderCase:
    """Each provider in turn, with its fake reset."""
    return CASES[request.param](request)


def arrangements() -> list[Any]:
    return [
        pytest.param(name, scenario, how, id=f"{name}-{scenario}-{index}")
        for name, case in sorted(CASES.items())
        for scenario, ways in case.SCENARIOS.items()
        for index, how in enumerate(ways)
    ]


def sms(key: str | None = None) -> Sms:
    return Sms(to=f"+86{fresh_phone()}", code="123456", minutes=5, key=key or uuid.uuid4().hex)


@pytest.mark.parametrize(("name", "scenario", "how"), arrangements())
def test_each_answer_classifies_as_its_kind(
    request: pytest.FixtureRequest, name: str, scenario: str, how: Any
) -> None:
    # given the fake arranged to answer so
    case = CASES[name](request)
    case.arrange(how)
    kind, held = SCENARIOS[scenario]
    message = sms()
    # when
    result = case.provider().send(message, NO_LEASE)
    # then
    assert type(result) is kind, result
    assert case.received() == held
    if isinstance(result, Failed):
        assert result.status_code  # logged and counted with the provider's code


def test_every_scenario_name_is_known() -> None:
    for case in CASES.values():
        assert set(case.SCENARIOS) <= set(SCENARIOS)
        assert "accepted" in case.SCENARIOS


def test_an_unreachable_provider_is_not_sent(provider_case: ProviderCase) -> None:
    target = provider_case.unreachable()
    if target is None:
        pytest.skip("this provider needs no network")
    assert isinstance(target.send(sms(), NO_LEASE), NotSent)


def test_a_repeated_key_is_sent_once_and_reported_as_a_repeat(
    provider_case: ProviderCase,
) -> None:
    if not provider_case.DEDUPLICATES:
        pytest.skip("this provider does not deduplicate")
    target, key = provider_case.provider(), uuid.uuid4().hex
    first = sms(key)
    second = Sms(to=first.to, code=first.code, minutes=first.minutes, key=key)
    one, two = target.send(first, NO_LEASE), target.send(second, NO_LEASE)
    assert isinstance(one, Sent)
    assert one.sid
    assert isinstance(two, Sent)
    assert two.repeat
    assert provider_case.received() == 1


# -- Ronglian's own -----------------------------------------------------------------------


def test_ronglian_answers_a_repeated_req_id_with_160054(fake_ronglian: FakeRonglian) -> None:
    target, req_id = RonglianCase.at(fake_ronglian.base_url), uuid.uuid4().hex
    assert isinstance(target.send(sms(req_id), NO_LEASE), Sent)
    assert isinstance(target.send(sms(req_id), NO_LEASE), Sent)
    assert len(fake_ronglian.accepted) == 1
    assert [r.status for r in fake_ronglian.requests] == ["000000", "160054"]


def test_the_ronglian_provider_prints_nothing(
    fake_ronglian: FakeRonglian, capfd: pytest.CaptureFixture[str]
) -> None:
    target = RonglianCase.at(fake_ronglian.base_url)
    fake_ronglian.script(Fault.DROP_SENT, (Fault.STATUS, "160042"))
    for _ in range(3):
        target.send(sms(), NO_LEASE)
    RonglianCase.at(f"http://127.0.0.1:{free_port()}").send(sms(), NO_LEASE)
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


# -- Aliyun's own -------------------------------------------------------------------------


def test_aliyun_sends_a_repeated_out_id_again(fake_aliyun: FakeAliyun) -> None:
    # Aliyun documents SendSms as not idempotent: the failover's `find` exists for this
    target, key = AliyunCase.at(fake_aliyun.endpoint), uuid.uuid4().hex
    first = sms(key)
    assert isinstance(target.send(first, NO_LEASE), Sent)
    assert isinstance(target.send(first, NO_LEASE), Sent)
    assert [message.out_id for message in fake_aliyun.sms_to(first.to)] == [key, key]


def test_aliyuns_lookup_takes_at_most_two_calls_time_however_many_pages(
    fake_aliyun: FakeAliyun,
) -> None:
    # given a number with 10 pages of records today (a QA number), and Aliyun taking 0.4 s
    # per call: reading them all would take 4 s, ten calls where the lease has room for two
    target, phone = AliyunCase.at(fake_aliyun.endpoint), sms().to
    for _ in range(LOOKUP_PAGES * LOOKUP_PAGE_SIZE):
        target.send(Sms(to=phone, code="1", minutes=5, key=uuid.uuid4().hex), NO_LEASE)
    fake_aliyun.latency = 0.4
    ours = Sms(to=phone, code="2", minutes=5, key=uuid.uuid4().hex)
    # when the lookup looks for ours (connect and read timeouts 0.5 s: 1 s a call)
    found = target.find(ours, datetime.now(UTC) - timedelta(seconds=5), math.inf)
    # then it stops within two calls' time, unable to say "surely none"
    assert isinstance(found, MaybeSent)
    queries = [r for r in fake_aliyun.requests if r.get("Action") == "QuerySendDetails"]
    assert len(queries) <= 2 * 1.0 / 0.4 + 1
