"""The `aliyun` provider: Dysmsapi `SendSms` (2017-05-25), RPC signature v1, on our HTTP client.

No SDK, by measurement (research/aliyun.md §6, Python 3.11): aliyun-python-sdk-core +
aliyun-python-sdk-dysmsapi add 6 packages, +21 MB and 85 ms of import, and send through a
vendored requests 2.18 rather than our pool; alibabacloud-dysmsapi20170525 adds 29 packages,
+42 MB and 258 ms of import, and signs with V3 unless told otherwise. The v1 signature is
twenty lines of stdlib (below), checked against Alibaba's own worked examples in
`tests/unit/test_aliyun_signing.py`, and keeps our client's (urllib3's) exception taxonomy,
which tells a connection never opened (safe to send elsewhere) from an answer lost (maybe sent).

Aliyun does not deduplicate anything, `OutId` included ("This API does not support
idempotence"), so a blind resend after a lost answer could send twice. `find` asks
`QuerySendDetails` for our `OutId` before such a resend (see `service_layer.failover`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote
from zoneinfo import ZoneInfo

from smscode.adapters.providers.ronglian import classify_error
from smscode.adapters.providers.transport import Origin
from smscode.domain.outcomes import Failed, MaybeSent, NotSent, Result, Sent, Sms
from smscode.domain.phones import national
from smscode.service_layer.ports import Lease

NAME = "aliyun"
VERSION = "2017-05-25"
BEIJING = ZoneInfo("Asia/Shanghai")  # QuerySendDetails' SendDate is a Beijing calendar day

# Codes that say nothing was sent and a later try may pass: throttling, flow control,
# a gateway that is briefly unavailable, a stale timestamp or nonce (each try signs afresh).
NOT_SENT = frozenset({
    "isv.BUSINESS_LIMIT_CONTROL", "Throttling", "Throttling.User", "Throttling.Api",
    "ServiceUnavailable", "InvalidTimeStamp.Expired", "SignatureNonceUsed",
})  # fmt: skip
# Retrying at this provider cannot help: number, signature, template, key or account.
PERMANENT = frozenset({
    "isv.MOBILE_NUMBER_ILLEGAL", "isv.SMS_SIGNATURE_ILLEGAL", "isv.SMS_SIGN_ILLEGAL",
    "isv.SMS_TEMPLATE_ILLEGAL", "InvalidAccessKeyId.NotFound", "InvalidAccessKeyId.Inactive",
    "SignatureDoesNotMatch", "isv.OUT_OF_SERVICE", "isv.AMOUNT_NOT_ENOUGH",
    "isv.DAY_LIMIT_CONTROL", "isv.MONTH_LIMIT_CONTROL", "isp.RAM_PERMISSION_DENY",
    "isv.TEMPLATE_MISSING_PARAMETERS", "isv.INVALID_JSON_PARAM", "isv.INVALID_PARAMETERS",
    "isv.MOBILE_COUNT_OVER_LIMIT",
})  # fmt: skip
# The permanent refusals about one number, not the account or template (see Failed).
FOR_NUMBER = frozenset({"isv.MOBILE_NUMBER_ILLEGAL", "isv.MOBILE_COUNT_OVER_LIMIT"})


# QuerySendDetails pages at most 50 records; a number with more than LOOKUP_PAGES pages in
# one day (a shared account, a QA number) is answered "maybe sent", never "surely none".
LOOKUP_PAGE_SIZE = 50
LOOKUP_PAGES = 10
# A lookup takes at most the time of this many calls, however many pages and days it reads:
# the delivery lease is sized for it (bootstrap `_call_seconds`), and SendSms must still fit.
LOOKUP_CALLS = 2


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


@dataclass(frozen=True)
class Credentials:
    """An AccessKey pair, as the RAM console shows it."""

    key_id: str
    secret: str = field(repr=False)  # a repr lands in logs and tracebacks


def pct(value: str) -> str:
    """RFC 3986 percent-encoding of UTF-8: only A-Z a-z 0-9 - _ . ~ stay literal."""
    return quote(value, safe="~")


def canonical_query(params: dict[str, str]) -> str:
    """`k=v` pairs, both encoded, sorted by name, joined by `&`."""
    return "&".join(f"{pct(k)}={pct(v)}" for k, v in sorted(params.items()))


def string_to_sign(method: str, params: dict[str, str]) -> str:
    """`METHOD&%2F&pct(canonical query)`: the values end up encoded twice."""
    return f"{method.upper()}&{pct('/')}&{pct(canonical_query(params))}"


def sign(method: str, params: dict[str, str], secret: str) -> str:
    """base64(HMAC-SHA1(secret + "&", StringToSign)) over every parameter but `Signature`."""
    unsigned = {k: v for k, v in params.items() if k != "Signature"}
    key = f"{secret}&".encode()
    mac = hmac.new(key, string_to_sign(method, unsigned).encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


def signed_url(endpoint: str, creds: Credentials, action: str, params: dict[str, str]) -> str:
    """`POST <endpoint>/?<params, signed>` as both SDKs send it: all in the query, no body."""
    common = {
        "Action": action,
        "Version": VERSION,
        "Format": "JSON",
        "AccessKeyId": creds.key_id,
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "SignatureNonce": uuid.uuid4().hex,  # fresh per try: a reused one is refused
        "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    query = common | params
    query["Signature"] = sign("POST", query, creds.secret)
    return f"{endpoint.rstrip('/')}/?{canonical_query(query)}"


def _answer(payload: bytes) -> dict[str, object] | None:
    try:
        answer = json.loads(payload)
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def classify_answer(status: int, payload: bytes) -> Result:
    """Map Aliyun's answer to a result kind: by `Code` in any status, by status without JSON.

    Business errors come as HTTP 200 with a `Code`; gateway errors as 4xx/5xx with one.
    An unknown code, a 5xx and `isp.SYSTEM_ERROR` are only *maybe* sent.
    """
    answer = _answer(payload)
    code = str(answer.get("Code", "")) if answer else ""
    message = str(answer.get("Message", "")) if answer else ""
    # SignatureDoesNotMatch quotes the string it signed: our phone and code, never to be logged
    message = message.partition(" server string to sign")[0][:200]
    if status == 200 and code == "OK":
        return Sent(
            sid=str(answer.get("BizId", "")) if answer else "", status_code=code, provider=NAME
        )
    if code in NOT_SENT or code.startswith("Throttling"):
        return NotSent(message or code, code)
    if code in PERMANENT:
        return Failed(message or code, code, for_number=code in FOR_NUMBER)
    if status == 429:
        return NotSent("HTTP 429", str(status))
    if not code and 400 <= status < 500 and status != 408:
        return Failed(f"HTTP {status}", str(status))
    return MaybeSent(message or f"HTTP {status}", code or str(status))


def send_dates(since: datetime) -> list[str]:
    """The Beijing days (yyyyMMdd) of `since` and of now: a send near midnight is filed under
    either."""
    days = {since.astimezone(BEIJING), datetime.now(BEIJING)}
    return sorted({day.strftime("%Y%m%d") for day in days})


class AliyunProvider:
    """Sends through one pooled keep-alive client per process; safe to share between threads."""

    name = NAME

    def __init__(
        self,
        creds: Credentials,
        *,
        sign_name: str,
        template_code: str,
        endpoint: str,
        connect_timeout: float,
        read_timeout: float,
        pool_size: int = 64,
    ) -> None:
        self._creds = creds
        self._sign_name = sign_name
        self._template_code = template_code
        self._origin = Origin(
            endpoint,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            pool_size=pool_size,
        )  # no retries: every retry goes through the delivery core

    def _call(self, action: str, params: dict[str, str], deadline: float) -> tuple[int, bytes]:
        """POST one signed action, over by `deadline`; the answer's status and body."""
        url = signed_url(self._origin.base_url, self._creds, action, params)
        return self._origin.post(url, {}, deadline=deadline)

    def send(self, sms: Sms, lease: Lease) -> Result:
        """One SendSms, `TemplateParam` = {"code": ...}, `OutId` = the send's key, over by the
        lease's deadline; never raises."""
        params = {
            "PhoneNumbers": national(sms.to),
            "SignName": self._sign_name,
            "TemplateCode": self._template_code,
            "TemplateParam": json.dumps({"code": sms.code}, separators=(",", ":")),
        }
        if sms.key is not None:
            params["OutId"] = sms.key
        try:
            status, payload = self._call("SendSms", params, lease.deadline)
        except Exception as error:  # urllib3's HTTPError family, or anything odd: never raise
            return classify_error(error)
        return classify_answer(status, payload)

    def find(self, sms: Sms, since: datetime, deadline: float) -> Result | None:
        """Whether Aliyun has an SMS to `sms.to` with our `OutId` since `since`.

        Sent when it has; None when its records certainly hold none; MaybeSent when the
        records could not be read (then nothing may be resent yet), in time included: the
        lookup is over by `deadline` and within `LOOKUP_CALLS` calls' time. Never raises.
        """
        deadline = min(deadline, time.monotonic() + LOOKUP_CALLS * self._origin.call_seconds)
        for day in send_dates(since):
            for page in range(1, LOOKUP_PAGES + 1):
                params = {
                    "PhoneNumber": national(sms.to), "SendDate": day,
                    "PageSize": str(LOOKUP_PAGE_SIZE), "CurrentPage": str(page),
                }  # fmt: skip
                try:
                    status, payload = self._call("QuerySendDetails", params, deadline)
                except Exception as error:
                    return MaybeSent(f"lookup failed: {type(error).__name__}")
                answer = _answer(payload)
                if status != 200 or not answer or answer.get("Code") != "OK":
                    code = str(answer.get("Code", "")) if answer else str(status)
                    return MaybeSent("lookup refused", code)
                details = answer.get("SmsSendDetailDTOs")
                rows = details.get("SmsSendDetailDTO", []) if isinstance(details, dict) else []
                if any(isinstance(row, dict) and row.get("OutId") == sms.key for row in rows):
                    return Sent(sid="", repeat=True, status_code="OK", provider=NAME)
                total = _int(answer.get("TotalCount"))
                if total is None:
                    return MaybeSent("lookup answer without TotalCount")
                if page * LOOKUP_PAGE_SIZE >= total:
                    break  # every record of the day read
            else:  # more records that day than we read: we cannot say "surely none"
                return MaybeSent("too many records to look through")
        return None
