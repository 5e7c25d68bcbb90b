"""AliyunProvider over the wire against the fake Aliyun: faults, refusals and `find`.

Moved from tests/unit/test_aliyun_taxonomy.py (which keeps the pure answer table).
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from smscode.adapters.providers.aliyun import AliyunProvider, Credentials
from smscode.domain.outcomes import Failed, MaybeSent, NotSent, Result, Sent, Sms
from smscode_dev.embedded import free_port
from tests.fakes.aliyun import DEFAULT_KEY_ID, DEFAULT_SECRET, FakeAliyun, Fault, FaultSpec
from tests.helpers import NO_LEASE, fresh_phone

READ_TIMEOUT = 0.5


def provider(endpoint: str, template_code: str = "SMS_154950909") -> AliyunProvider:
    return AliyunProvider(
        Credentials(DEFAULT_KEY_ID, DEFAULT_SECRET),
        sign_name="阿里云短信测试", template_code=template_code, endpoint=endpoint,
        connect_timeout=0.5, read_timeout=READ_TIMEOUT,
    )  # fmt: skip


def sms() -> Sms:
    return Sms(to=f"+86{fresh_phone()}", code="123456", minutes=5, key=uuid.uuid4().hex)


def test_a_send_reaches_the_fake_signed_with_code_and_out_id(fake_aliyun: FakeAliyun) -> None:
    message = sms()
    result = provider(fake_aliyun.endpoint).send(message, NO_LEASE)
    assert isinstance(result, Sent)
    assert result.provider == "aliyun"
    assert result.sid
    [sent] = fake_aliyun.sms_to(message.to)
    assert (sent.code, sent.out_id) == ("123456", message.key)


@pytest.mark.parametrize(
    ("fault", "kind", "sends"),
    [
        ((Fault.CODE, "isv.BUSINESS_LIMIT_CONTROL"), NotSent, 0),
        ((Fault.CODE, "Throttling.User"), NotSent, 0),
        ((Fault.CODE, "ServiceUnavailable"), NotSent, 0),
        ((Fault.CODE, "isp.SYSTEM_ERROR"), MaybeSent, 0),
        (Fault.ERROR_SENT, MaybeSent, 1),
        (Fault.DROP_SENT, MaybeSent, 1),
        (Fault.DROP_UNSENT, MaybeSent, 0),  # the client cannot tell the two drops apart
        (Fault.SLOW_SENT, MaybeSent, 1),
    ],
)
def test_each_fault_of_the_fake_maps_to_its_kind(
    fake_aliyun: FakeAliyun, fault: FaultSpec, kind: type[Result], sends: int
) -> None:
    fake_aliyun.slow_seconds = READ_TIMEOUT * 4
    fake_aliyun.script(fault)
    assert type(provider(fake_aliyun.endpoint).send(sms(), NO_LEASE)) is kind
    assert len(fake_aliyun.sent) == sends


def test_a_wrong_template_is_a_permanent_failure(fake_aliyun: FakeAliyun) -> None:
    result = provider(fake_aliyun.endpoint, template_code="SMS_0").send(sms(), NO_LEASE)
    assert isinstance(result, Failed)
    assert result.status_code == "isv.SMS_TEMPLATE_ILLEGAL"


def test_a_refused_connection_is_not_sent() -> None:
    result = provider(f"http://127.0.0.1:{free_port()}").send(sms(), NO_LEASE)
    assert isinstance(result, NotSent)


def test_find_sees_an_sms_by_out_id_and_only_ours(fake_aliyun: FakeAliyun) -> None:
    ours, other = sms(), sms()
    since = datetime.now(UTC) - timedelta(seconds=5)
    aliyun = provider(fake_aliyun.endpoint)
    assert aliyun.find(ours, since, math.inf) is None
    fake_aliyun.script(Fault.DROP_SENT)
    assert isinstance(aliyun.send(ours, NO_LEASE), MaybeSent)
    found = aliyun.find(ours, since, math.inf)
    assert isinstance(found, Sent)
    assert found.repeat
    same_phone = Sms(to=ours.to, code="1", minutes=5, key=other.key)
    assert aliyun.find(same_phone, since, math.inf) is None


def test_find_cannot_tell_when_the_records_cannot_be_read() -> None:
    result = provider(f"http://127.0.0.1:{free_port()}").find(sms(), datetime.now(UTC), math.inf)
    assert isinstance(result, MaybeSent)


def test_find_reads_past_the_first_page_of_a_busy_number(fake_aliyun: FakeAliyun) -> None:
    # given a number that had 60 other SMS today before ours (a QA number, a shared account)
    since = datetime.now(UTC) - timedelta(seconds=5)
    aliyun = provider(fake_aliyun.endpoint)
    phone = sms().to
    for _ in range(60):
        assert isinstance(
            aliyun.send(Sms(to=phone, code="1", minutes=5, key=uuid.uuid4().hex), NO_LEASE), Sent
        )
    ours = Sms(to=phone, code="2", minutes=5, key=uuid.uuid4().hex)
    assert aliyun.find(ours, since, math.inf) is None  # two pages read, none of them ours
    fake_aliyun.script(Fault.DROP_SENT)
    assert isinstance(aliyun.send(ours, NO_LEASE), MaybeSent)
    # when the lookup looks for ours, the 61st record, on the second page
    found = aliyun.find(ours, since, math.inf)
    # then it is found there, not taken as "surely none"
    assert isinstance(found, Sent)
