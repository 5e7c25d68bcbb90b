"""The `ronglian` provider: Ronglian's TemplateSMS REST call, signed as `ronglian_sms_sdk` signs.

We sign ourselves instead of calling `SmsSDK.sendMessage` because the SDK prints the auth
token and the code on every call, stamps the time in the host's zone (UTC on Lambda), cannot
send `reqId`, opens a new connection per call, and folds every exception into 172001 so a
lost answer looks like a refused connection. The request it builds stays the reference:
`tests/unit/test_ronglian_signing.py` checks ours against the unmodified SDK byte for byte.
"""

from __future__ import annotations

import base64
import hashlib
import json
import ssl
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from urllib3.exceptions import (
    ConnectTimeoutError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from smscode.adapters.providers.transport import Origin
from smscode.domain.outcomes import Failed, MaybeSent, NotSent, Result, Sent, Sms
from smscode.domain.phones import national
from smscode.service_layer.ports import Lease

BEIJING = ZoneInfo("Asia/Shanghai")
PATH = "/2013-12-26/Accounts/{}/SMS/TemplateSMS"
SUCCESS = "000000"
REPEATED_REQ_ID = "160054"


def _codes(*spans: tuple[int, int]) -> frozenset[str]:
    return frozenset(str(code) for low, high in spans for code in range(low, high + 1))


# Ronglian's statusCodes (REFERENCE.md), each classed once. A code in neither set, 172001
# ("network error", which the server also answers) included, is *maybe sent*: retried with
# the same reqId until the code expires, never dropped. reqId makes a repeat harmless.
NOT_SENT = _codes(
    (111000, 111099),  # unknown or internal error
    (111106, 111106),  # timestamp expired: clock skew, the next try stamps afresh
    (111111, 111111),  # concurrency limit exceeded
    (160000, 160010),  # system error, channel busy
    (160050, 160050),  # send failed
    (160063, 160064),  # send failed
)
# Where a retry cannot help: the account, app, template, number or content is wrong.
PERMANENT = _codes(
    (111100, 111105),  # account in the URL, Authorization missing or undecodable
    (111107, 111110),  # timestamp format, sig missing or wrong, SoftVersion
    (111113, 111113),
    (111128, 111143),  # main account: not activated, paused, closed, balance, token
    (111169, 111182),  # app id empty, invalid, deleted, disabled, unpublished, not owned
    (112300, 112311),  # empty number or body, SMS not enabled, app offline, no template
    (113302, 113302),  # test template to an unregistered number
    (160030, 160049),  # body, template, blacklist, length, per-number caps, number format
    (160051, 160053),  # unsubscribed number, template variables, IP whitelist
    (160054, 160054),  # a repeated request that is not ours (we sent no reqId)
    (160055, 160062),  # reqId, duplicate content, template id, international, schedule
    (160065, 160074),
    (172003, 172007),  # bad answer body, empty IP, account, token or appId (SDK side)
    (172012, 172012),
)
# The permanent refusals about one number, not the account or template: verification codes
# sent too often, the per-number daily caps, a malformed or unsubscribed number, a test
# template to an unregistered number, a repeated request that is not ours.
FOR_NUMBER = _codes(
    (113302, 113302),
    (160038, 160042),
    (160051, 160051),
    (160054, 160054),
)


@dataclass(frozen=True)
class Credentials:
    """The account, its token and the app, as Ronglian's console shows them."""

    acc_id: str
    acc_token: str = field(repr=False)  # a repr lands in logs and tracebacks
    app_id: str


def timestamp(now: datetime | None = None) -> str:
    """`yyyyMMddHHmmss` in Beijing time, whatever the host's TZ."""
    return (now or datetime.now(BEIJING)).astimezone(BEIJING).strftime("%Y%m%d%H%M%S")


def build_request(
    creds: Credentials,
    base_url: str,
    stamp: str,
    *,
    to: str,
    template_id: str,
    datas: list[str],
    req_id: str | None,
) -> tuple[str, dict[str, str], bytes]:
    """The URL, headers and JSON body of one TemplateSMS call, exactly as the SDK builds them."""
    plain = f"{creds.acc_id}{creds.acc_token}{stamp}".encode()
    sig = hashlib.md5(plain, usedforsecurity=False).hexdigest().upper()  # Ronglian's scheme
    url = f"{base_url.rstrip('/')}{PATH.format(creds.acc_id)}?sig={sig}"
    headers = {
        "Content-Type": "application/json;charset=utf-8",
        "Accept": "application/json",
        "Accept-Charset": "UTF-8",
        "Authorization": base64.b64encode(f"{creds.acc_id}:{stamp}".encode()).decode(),
    }
    body: dict[str, object] = {
        "to": to,
        "appId": creds.app_id,
        "templateId": template_id,
        "datas": [str(item) for item in datas],
    }
    if req_id is not None:
        body["reqId"] = req_id
    return url, headers, json.dumps(body).encode()


def classify_answer(status: int, payload: bytes, *, with_req_id: bool) -> Result:
    """Map Ronglian's HTTP answer to a result kind.

    A 5xx or an unparseable body is only *maybe* sent: a proxy in front of Ronglian can fail
    after Ronglian took the request. 160054 means an earlier attempt carrying the same reqId
    got through, so it counts as sent, but only when we sent a reqId at all.
    """
    if status >= 500:
        return MaybeSent(f"HTTP {status}", str(status))
    if status == 429:  # throttled in front of the API: the request was refused, not sent
        return NotSent("HTTP 429", str(status))
    if status == 408:  # the proxy gave up waiting: Ronglian may have it
        return MaybeSent("HTTP 408", str(status))
    if status != 200:
        return Failed(f"HTTP {status}", str(status))
    try:
        answer = json.loads(payload)
        code = str(answer["statusCode"])
    except (ValueError, KeyError, TypeError):
        return MaybeSent("unparseable answer")
    if code == SUCCESS:
        sid = answer.get("templateSMS", {}).get("smsMessageSid", "")
        return Sent(sid=str(sid), status_code=code, provider="ronglian")
    if code == REPEATED_REQ_ID and with_req_id:
        return Sent(sid="", repeat=True, status_code=code, provider="ronglian")
    message = str(answer.get("statusMsg", ""))[:200]
    if code in NOT_SENT:
        return NotSent(message or "retryable refusal", code)
    if code in PERMANENT:
        return Failed(message or "refused", code, for_number=code in FOR_NUMBER)
    return MaybeSent(message or "unknown status", code)


def classify_error(error: Exception) -> Result:
    """Tell a request that never left from one whose answer was lost (transport.py raises
    urllib3's errors: no connection, or no time left before the call, is NotSent)."""
    if isinstance(error, NewConnectionError | ConnectTimeoutError | NameResolutionError):
        return NotSent(f"no connection: {type(error).__name__}")
    if isinstance(error, SSLError):
        # urllib3 also wraps TLS errors of reading the answer, after the body went out; only
        # a refused certificate surely stops a request before it is written.
        if isinstance(error.__cause__ or (error.args or [None])[0], ssl.SSLCertVerificationError):
            return NotSent("TLS certificate refused")
        return MaybeSent("TLS error")
    if isinstance(error, ReadTimeoutError | ProtocolError):
        return MaybeSent(f"answer lost: {type(error).__name__}")
    # Anything else may have happened after the body was written: assume the worst.
    return MaybeSent(f"transport error: {type(error).__name__}")


class RonglianProvider:
    """Sends through one pooled keep-alive client per process; safe to share between threads."""

    def __init__(
        self,
        creds: Credentials,
        *,
        template_id: str,
        base_url: str,
        connect_timeout: float,
        read_timeout: float,
        pool_size: int = 64,
    ) -> None:
        self._creds = creds
        self._template_id = template_id
        self._origin = Origin(
            base_url,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            pool_size=pool_size,
        )  # no retries: every retry goes through the delivery core, with its reqId

    def send(self, sms: Sms, lease: Lease) -> Result:
        """One TemplateSMS call, `datas` = [code, minutes], `reqId` = the send's key, over by
        the lease's deadline.

        Never raises for network or provider failures. A key of None sends as
        `ronglian_sms_sdk` does, without Ronglian's deduplication.
        """
        req_id = sms.key
        url, headers, body = build_request(
            self._creds, self._origin.base_url, timestamp(),
            to=national(sms.to), template_id=self._template_id,
            datas=[sms.code, str(sms.minutes)], req_id=req_id,
        )  # fmt: skip
        try:
            status, payload = self._origin.post(url, headers, body, deadline=lease.deadline)
        except Exception as error:  # urllib3's HTTPError family, or anything odd: never raise
            return classify_error(error)
        return classify_answer(status, payload, with_req_id=req_id is not None)
