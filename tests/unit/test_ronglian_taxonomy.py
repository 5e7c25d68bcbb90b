"""Each transport error, HTTP status and statusCode maps to sent, not sent, maybe sent or failed.

The same provider over the wire, against the fake Ronglian: tests/integration/test_providers.py.
"""

from __future__ import annotations

import json
import ssl

import pytest
from urllib3.exceptions import (
    ConnectTimeoutError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from smscode.adapters.providers.ronglian import classify_answer, classify_error
from smscode.domain.outcomes import Failed, MaybeSent, NotSent, Result, Sent


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (NewConnectionError(None, "refused"), NotSent),  # type: ignore[arg-type]
        (NameResolutionError("app.cloopen.com", None, OSError("no such host")), NotSent),  # type: ignore[arg-type]
        (ConnectTimeoutError("connect timed out"), NotSent),
        (SSLError(ssl.SSLCertVerificationError(1, "certificate verify failed")), NotSent),
        (SSLError("handshake failure"), MaybeSent),  # urllib3 wraps read-side TLS errors too
        (SSLError(ssl.SSLError(1, "bad record mac")), MaybeSent),
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
        assert result.status_code  # logged with the code
