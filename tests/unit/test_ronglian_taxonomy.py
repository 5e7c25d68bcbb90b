"""Each transport error, HTTP status and statusCode maps to sent, not sent, maybe sent or failed."""

from __future__ import annotations

import json
import uuid

import pytest
from urllib3.exceptions import (
    ConnectTimeoutError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from smscode.adapters.providers.ronglian import (
    Credentials,
    RonglianProvider,
    classify_answer,
    classify_error,
)
from smscode.domain.outcomes import Failed, MaybeSent, NotSent, Result, Sent, Sms
from smscode_dev.embedded import free_port
from tests.fakes.ronglian import (
    DEFAULT_ACC_ID,
    DEFAULT_ACC_TOKEN,
    DEFAULT_APP_ID,
    FakeRonglian,
    Fault,
    FaultSpec,
)
from tests.helpers import fresh_phone

CREDS = Credentials(acc_id=DEFAULT_ACC_ID, acc_token=DEFAULT_ACC_TOKEN, app_id=DEFAULT_APP_ID)
READ_TIMEOUT = 0.5


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (NewConnectionError(None, "refused"), NotSent),  # type: ignore[arg-type]
        (NameResolutionError("app.cloopen.com", None, OSError("no such host")), NotSent),  # type: ignore[arg-type]
        (ConnectTimeoutError("connect timed out"), NotSent),
        (SSLError("handshake failure"), NotSent),
        (ReadTimeoutError(None, "/", "read timed out"), MaybeSent),  # type: ignore[arg-type]
        (ProtocolError("Connection aborted.", ConnectionResetError()), MaybeSent),
        (ValueError("anything unexpected"), MaybeSent),
    ],
)
def test_transport_errors_map_to_their_kind(error: Exception, kind: type[Result]) -> None:
    assert type(classify_error(error)) is kind


def answer(code: str) -> bytes:
    return json.dumps({"statusCode": code, "statusMsg": "msg"}).encode()


OK = json.dumps({"statusCode": "000000", "templateSMS": {"smsMessageSid": "abc"}}).encode()


@pytest.mark.parametrize(
    ("status", "payload", "with_req_id", "kind"),
    [
        (200, OK, True, Sent),
        (200, answer("160054"), True, Sent),  # an earlier attempt with our reqId got through
        (200, answer("160054"), False, Failed),  # without a reqId of ours it is not ours
        (200, answer("160038"), True, Failed),  # verification codes sent too often
        (200, answer("160040"), True, Failed),  # daily cap per number
        (200, answer("160042"), True, Failed),  # bad number
        (200, answer("111142"), True, Failed),  # balance too low
        (200, answer("111109"), True, Failed),  # bad sig: a bug, not a glitch
        (200, answer("160050"), True, NotSent),  # send failed: retry
        (200, answer("111111"), True, NotSent),  # concurrency limit
        (200, answer("160000"), True, NotSent),  # system error
        (200, answer("111106"), True, NotSent),  # timestamp expired: the retry stamps afresh
        (200, answer("172001"), True, MaybeSent),  # "network error" from the server: retry
        (200, answer("172001"), False, MaybeSent),
        (200, answer("999999"), True, MaybeSent),  # a code not in the table: retry, not drop
        (200, answer("160099"), True, MaybeSent),
        (200, answer("111143"), True, Failed),  # token invalid
        (200, answer("112311"), True, Failed),  # template missing
        (500, b"<html>nginx</html>", True, MaybeSent),
        (502, b"", True, MaybeSent),
        (429, b"", True, NotSent),
        (408, b"", True, MaybeSent),
        (404, b"<html>404</html>", True, Failed),
        (200, b"<html>{statusCode:", True, MaybeSent),  # unparseable: maybe it went out
        (200, b'{"no": "code"}', True, MaybeSent),
    ],
)
def test_answers_map_to_their_kind(
    status: int, payload: bytes, with_req_id: bool, kind: type[Result]
) -> None:
    result = classify_answer(status, payload, with_req_id=with_req_id)
    assert type(result) is kind
    if kind is Failed:
        assert result.status_code  # type: ignore[union-attr]  # logged with the code


def provider(base_url: str) -> RonglianProvider:
    return RonglianProvider(
        CREDS, template_id="1", base_url=base_url, connect_timeout=0.5, read_timeout=READ_TIMEOUT
    )


def send(target: RonglianProvider, req_id: str | None = None) -> Result:
    sms = Sms(to=f"+86{fresh_phone()}", code="123456", minutes=5, key=req_id or uuid.uuid4().hex)
    return target.send(sms)


def test_closed_port_is_not_sent() -> None:
    result = send(provider(f"http://127.0.0.1:{free_port()}"))
    assert isinstance(result, NotSent)


@pytest.mark.parametrize(
    ("fault", "kind", "sms"),
    [
        (Fault.DROP_SENT, MaybeSent, 1),
        (Fault.DROP_UNSENT, MaybeSent, 0),  # the client cannot tell it from DROP_SENT
        (Fault.SLOW_SENT, MaybeSent, 1),  # answered after our read timeout
        (Fault.HTTP_500, MaybeSent, 0),
        (Fault.GARBAGE, MaybeSent, 0),
        ((Fault.STATUS, "160050"), NotSent, 0),
        ((Fault.STATUS, "160038"), Failed, 0),
        ((Fault.STATUS, "160042"), Failed, 0),
        ((Fault.STATUS, "111142"), Failed, 0),
    ],
)
def test_the_fake_servers_faults_map_to_their_kind(
    fake_ronglian: FakeRonglian,
    monkeypatch: pytest.MonkeyPatch,
    fault: FaultSpec,
    kind: type[Result],
    sms: int,
) -> None:
    monkeypatch.setattr(fake_ronglian, "slow_seconds", READ_TIMEOUT * 2)
    fake_ronglian.script(fault)
    assert type(send(provider(fake_ronglian.base_url))) is kind
    assert len(fake_ronglian.accepted) == sms


def test_a_repeated_req_id_is_sent_once_and_reported_as_a_repeat(
    fake_ronglian: FakeRonglian,
) -> None:
    target, req_id = provider(fake_ronglian.base_url), uuid.uuid4().hex
    first = send(target, req_id)
    second = send(target, req_id)
    assert isinstance(first, Sent)
    assert first.sid
    assert isinstance(second, Sent)
    assert second.repeat
    assert len(fake_ronglian.accepted) == 1
    assert [r.status for r in fake_ronglian.requests] == ["000000", "160054"]


def test_the_provider_prints_nothing(
    fake_ronglian: FakeRonglian, capfd: pytest.CaptureFixture[str]
) -> None:
    target = provider(fake_ronglian.base_url)
    fake_ronglian.script(Fault.DROP_SENT, (Fault.STATUS, "160042"))
    for _ in range(3):
        send(target)
    send(provider(f"http://127.0.0.1:{free_port()}"))
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
