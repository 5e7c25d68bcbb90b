"""Aliyun's answers map to sent, not sent, maybe sent or failed.

The provider over the wire, against the fake Aliyun: tests/integration/test_aliyun_provider.py.
"""

from __future__ import annotations

import json

import pytest

from smscode.adapters.providers.aliyun import classify_answer
from smscode.domain.outcomes import Failed, MaybeSent, NotSent, Result, Sent


def body(code: str, **extra: str) -> bytes:
    return json.dumps({"Code": code, "Message": "m", "RequestId": "R"} | extra).encode()


@pytest.mark.parametrize(
    ("status", "payload", "kind"),
    [
        (200, body("OK", BizId="9006^0"), Sent),
        (200, body("isv.BUSINESS_LIMIT_CONTROL"), NotSent),
        (400, body("Throttling.User"), NotSent),
        (429, body("Throttling.User"), NotSent),
        (503, body("ServiceUnavailable"), NotSent),
        (200, body("isv.MOBILE_NUMBER_ILLEGAL"), Failed),
        (200, body("isv.SMS_SIGNATURE_ILLEGAL"), Failed),
        (200, body("isv.SMS_TEMPLATE_ILLEGAL"), Failed),
        (404, body("InvalidAccessKeyId.NotFound"), Failed),
        (400, body("SignatureDoesNotMatch"), Failed),
        (200, body("isv.AMOUNT_NOT_ENOUGH"), Failed),
        (500, body("InternalError"), MaybeSent),
        (200, body("isp.SYSTEM_ERROR"), MaybeSent),
        (200, body("isv.SOMETHING_NEW"), MaybeSent),  # an unknown code is never dropped
        (502, b"<html>502 Bad Gateway</html>", MaybeSent),  # an LB's page, no JSON
        (200, b"not json", MaybeSent),
        (403, b"<html>Forbidden</html>", Failed),
    ],
)
def test_answers_map_to_their_kind(status: int, payload: bytes, kind: type[Result]) -> None:
    assert type(classify_answer(status, payload)) is kind


def test_a_signature_mismatch_never_carries_the_signed_phone_or_code_into_the_reason() -> None:
    # Aliyun quotes the string it signed, which holds PhoneNumbers and TemplateParam
    message = (
        "Specified signature is not matched with our calculation. server string to sign is:"
        "POST&%2F&...PhoneNumbers%3D13800138000...TemplateParam%3D%257B%2522code%2522..."
    )
    payload = json.dumps({"Code": "SignatureDoesNotMatch", "Message": message}).encode()
    result = classify_answer(400, payload)
    assert isinstance(result, Failed)
    assert result.reason == "Specified signature is not matched with our calculation."
