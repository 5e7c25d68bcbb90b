"""The fake Aliyun checks what the real gateway checks, and fails as it does."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import urllib3

from smscode.adapters.providers.aliyun import canonical_query, sign
from tests.fakes.aliyun import (
    BEIJING,
    DEFAULT_KEY_ID,
    DEFAULT_SECRET,
    DEFAULT_SIGN_NAME,
    DEFAULT_TEMPLATE_CODE,
    FakeAliyun,
)

HTTP = urllib3.PoolManager(retries=False, timeout=2)


def params(**overrides: str) -> dict[str, str]:
    base = {
        "Action": "SendSms", "Version": "2017-05-25", "Format": "JSON",
        "AccessKeyId": DEFAULT_KEY_ID, "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0", "SignatureNonce": uuid.uuid4().hex,
        "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "PhoneNumbers": "13800138000", "SignName": DEFAULT_SIGN_NAME,
        "TemplateCode": DEFAULT_TEMPLATE_CODE, "TemplateParam": '{"code":"4821"}',
    }  # fmt: skip
    return base | overrides


def call(
    fake_aliyun: FakeAliyun,
    query: dict[str, str],
    method: str = "POST",
    secret: str = DEFAULT_SECRET,
) -> tuple[int, dict[str, Any]]:
    signed = query | {"Signature": sign(method, query, secret)}
    answer = HTTP.request(method, f"{fake_aliyun.endpoint}/?{canonical_query(signed)}")
    return answer.status, json.loads(answer.data)


def test_a_signed_post_sends_and_a_signed_get_too(fake_aliyun: FakeAliyun) -> None:
    assert call(fake_aliyun, params())[0] == 200
    status, answer = call(fake_aliyun, params(), method="GET")
    assert (status, answer["Code"]) == (200, "OK")
    assert answer["BizId"]
    assert [sms.code for sms in fake_aliyun.sent] == ["4821", "4821"]


def test_a_form_body_is_signed_with_the_query(fake_aliyun: FakeAliyun) -> None:
    query = params()
    signed = query | {"Signature": sign("POST", query, DEFAULT_SECRET)}
    answer = HTTP.request(
        "POST", f"{fake_aliyun.endpoint}/", body=canonical_query(signed).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert json.loads(answer.data)["Code"] == "OK"


def test_a_wrong_secret_is_refused_with_the_string_the_server_signed(
    fake_aliyun: FakeAliyun,
) -> None:
    status, answer = call(fake_aliyun, params(), secret="wrong")
    assert (status, answer["Code"]) == (400, "SignatureDoesNotMatch")
    assert "server string to sign is:POST&%2F&AccessKeyId%3D" in answer["Message"]
    assert fake_aliyun.sent == []


def test_an_unknown_key_is_404(fake_aliyun: FakeAliyun) -> None:
    status, answer = call(fake_aliyun, params(AccessKeyId="LTAIunknown"))
    assert (status, answer["Code"]) == (404, "InvalidAccessKeyId.NotFound")


@pytest.mark.parametrize("skew", [timedelta(minutes=16), -timedelta(minutes=16)])
def test_a_timestamp_outside_15_minutes_is_refused(
    fake_aliyun: FakeAliyun, skew: timedelta
) -> None:
    stamp = (datetime.now(UTC) + skew).strftime("%Y-%m-%dT%H:%M:%SZ")
    status, answer = call(fake_aliyun, params(Timestamp=stamp))
    assert (status, answer["Code"]) == (400, "InvalidTimeStamp.Expired")


def test_a_timestamp_inside_the_window_passes(fake_aliyun: FakeAliyun) -> None:
    stamp = (datetime.now(UTC) - timedelta(minutes=14)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert call(fake_aliyun, params(Timestamp=stamp))[1]["Code"] == "OK"


def test_a_reused_nonce_is_refused_and_sends_nothing_twice(fake_aliyun: FakeAliyun) -> None:
    query = params()
    assert call(fake_aliyun, query)[1]["Code"] == "OK"
    status, answer = call(fake_aliyun, query)
    assert (status, answer["Code"]) == (400, "SignatureNonceUsed")
    assert len(fake_aliyun.sent) == 1


def test_the_same_out_id_is_sent_again_as_aliyun_does(fake_aliyun: FakeAliyun) -> None:
    call(fake_aliyun, params(OutId="abc"))
    call(fake_aliyun, params(OutId="abc"))
    assert [sms.out_id for sms in fake_aliyun.sent] == ["abc", "abc"]  # no deduplication


@pytest.mark.parametrize(
    ("override", "code"),
    [
        ({"PhoneNumbers": "1380013800"}, "isv.MOBILE_NUMBER_ILLEGAL"),
        ({"SignName": "别的签名"}, "isv.SMS_SIGNATURE_ILLEGAL"),
        ({"TemplateCode": "SMS_1"}, "isv.SMS_TEMPLATE_ILLEGAL"),
        ({"TemplateParam": "{code}"}, "isv.INVALID_JSON_PARAM"),
        ({"TemplateParam": "{}"}, "isv.TEMPLATE_MISSING_PARAMETERS"),
    ],
)
def test_business_errors_come_as_http_200(
    fake_aliyun: FakeAliyun, override: dict[str, str], code: str
) -> None:
    status, answer = call(fake_aliyun, params(**override))
    assert (status, answer["Code"]) == (200, code)
    assert "BizId" not in answer


def test_query_send_details_lists_a_phones_sms_of_a_day(fake_aliyun: FakeAliyun) -> None:
    call(fake_aliyun, params(OutId="mine"))
    day = datetime.now(UTC).astimezone(BEIJING).strftime("%Y%m%d")
    query = params(Action="QuerySendDetails", PhoneNumber="13800138000", SendDate=day)
    for name in ("PhoneNumbers", "SignName", "TemplateCode", "TemplateParam"):
        query.pop(name)
    status, answer = call(fake_aliyun, query | {"PageSize": "50", "CurrentPage": "1"})
    rows = answer["SmsSendDetailDTOs"]["SmsSendDetailDTO"]
    assert status == 200
    assert [row["OutId"] for row in rows] == ["mine"]
