"""Our TemplateSMS request equals what the unmodified `ronglian_sms_sdk` builds, plus reqId."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import redirect_stdout
from datetime import UTC, datetime
from io import StringIO

import pytest
from ronglian_sms_sdk import SmsSDK

from smscode.adapters.providers.ronglian import Credentials, build_request, timestamp
from tests.helpers import local_timezone

ACC, TOKEN, APP = "8a216da8fake0acc0000000000000001", "secrettoken000000000000000000abc", "app01"
CREDS = Credentials(acc_id=ACC, acc_token=TOKEN, app_id=APP)
STAMP = "20240229235959"
BASE = "https://app.cloopen.com:8883"


def sdk_request(
    stamp: str, tid: str, mobile: str, datas: list[str]
) -> tuple[str, dict[str, str], str]:
    """The SDK's own URL, headers and body; its prints (token included) are swallowed."""
    sdk = SmsSDK(ACC, TOKEN, APP)
    with redirect_stdout(StringIO()):
        url = sdk._SmsSDK__buildSendMessageUrl(stamp)
        headers = sdk._SmsSDK__buildHeaders(stamp)
        body = sdk._SmsSDK__buildSendMessageBody(tid, mobile, datas)
    # Authorization comes out as bytes; requests writes them to the wire as they are.
    wire = {k: v.decode() if isinstance(v, bytes) else v for k, v in headers.items()}
    return url, wire, body


@pytest.fixture
def utc_host() -> Iterator[None]:
    """The process's local zone set to UTC, as on Lambda."""
    with local_timezone("UTC"):
        yield


def test_url_sig_headers_and_body_equal_the_sdks() -> None:
    # given the SDK's request for a fixed timestamp
    want_url, want_headers, want_body = sdk_request(STAMP, "1", "13800138000", ["123456", "5"])
    # when ours is built for the same timestamp, without and with reqId
    url, headers, body = build_request(
        CREDS, BASE, STAMP, to="13800138000", template_id="1", datas=["123456", "5"], req_id=None
    )
    _, _, with_id = build_request(
        CREDS, BASE, STAMP, to="13800138000", template_id="1", datas=["123456", "5"], req_id="a1"
    )
    # then
    assert url == want_url
    assert "?sig=" in url
    assert url.split("?sig=")[1].isupper()
    assert headers == want_headers
    assert body.decode() == want_body  # byte for byte
    assert json.loads(with_id) == {**json.loads(want_body), "reqId": "a1"}


def test_datas_go_out_as_strings_even_when_numbers_are_given() -> None:
    _, _, body = build_request(
        CREDS, BASE, STAMP, to="13800138000", template_id="1", datas=[123456, 5],  # type: ignore[list-item]
        req_id="a1",
    )  # fmt: skip
    assert json.loads(body)["datas"] == ["123456", "5"]


@pytest.mark.usefixtures("utc_host")
def test_timestamp_is_beijing_time_on_a_utc_host() -> None:
    # a fixed instant: midnight UTC is 08:00 in Beijing
    assert timestamp(datetime(2024, 1, 1, tzinfo=UTC)) == "20240101080000"
    # now: eight hours ahead of the host's local (UTC) clock, not equal to it
    local = time.strftime("%Y%m%d%H%M%S", time.localtime())
    ours = timestamp()
    shifted = datetime.strptime(ours, "%Y%m%d%H%M%S").timestamp()
    assert (
        8 * 3600 - 5
        <= shifted - datetime.strptime(local, "%Y%m%d%H%M%S").timestamp()
        <= 8 * 3600 + 5
    )
