"""Local fake of Aliyun's Dysmsapi (SendSms, QuerySendDetails) with scriptable faults.

It checks requests as Alibaba documents them (research/aliyun.md): the RPC v1 signature
recomputed from the request's own method and parameters, the ±15 min timestamp window and
nonce reuse; it answers gateway errors as 4xx/5xx with a JSON `Code` and business errors as
HTTP 200 with one, like the real service. Like it, it never deduplicates on `OutId`.
"""

from __future__ import annotations

import enum
import hmac
import json
import random
import secrets
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

from smscode.adapters.providers.aliyun import sign, string_to_sign
from tests.fakes.ronglian import _Handler, _Server
from tests.fakes.serving import ServedFake

__all__ = [
    "DEFAULT_KEY_ID",
    "DEFAULT_SECRET",
    "DEFAULT_SIGN_NAME",
    "DEFAULT_TEMPLATE_CODE",
    "FakeAliyun",
    "Fault",
    "Sms",
]

BEIJING = ZoneInfo("Asia/Shanghai")
DEFAULT_KEY_ID = "LTAI5tFakeKeyId000000001"
DEFAULT_SECRET = "fakeAccessKeySecret0000000000a"
DEFAULT_SIGN_NAME = "阿里云短信测试"
DEFAULT_TEMPLATE_CODE = "SMS_154950909"
_MAX_SKEW = timedelta(minutes=15)
_HOST_ID = "dysmsapi.aliyuncs.com"
_MESSAGES = {
    "InvalidAccessKeyId.NotFound": "Specified access key is not found.",
    "SignatureDoesNotMatch": "Specified signature is not matched with our calculation.",
    "InvalidTimeStamp.Expired": "Specified time stamp or date value is expired.",
    "SignatureNonceUsed": "Specified signature nonce was used already.",
    "Throttling.User": "Request was denied due to user flow control.",
    "ServiceUnavailable": "The request has failed due to a temporary failure of the server.",
    "InternalError": "The request processing has failed due to some unknown error.",
    "isv.BUSINESS_LIMIT_CONTROL": "触发分钟级流控Permits:1",
    "isv.MOBILE_NUMBER_ILLEGAL": "非法手机号",
    "isv.SMS_SIGNATURE_ILLEGAL": "该账号下找不到对应签名",
    "isv.SMS_TEMPLATE_ILLEGAL": "该账号下找不到对应模板",
    "isv.INVALID_JSON_PARAM": "JSON参数不合法，只接受字符串值",
    "isv.TEMPLATE_MISSING_PARAMETERS": "模板变量缺少对应参数值",
    "isp.SYSTEM_ERROR": "系统错误",
}


class Fault(enum.Enum):
    """How the fake treats a SendSms that passed validation."""

    OK = "ok"
    CODE = "code"  # answer this Code (HTTP status from the code), send nothing
    ERROR_SENT = "error_sent"  # send, then answer HTTP 500 InternalError: the ambiguous case
    DROP_UNSENT = "drop_unsent"  # close the connection, send nothing
    DROP_SENT = "drop_sent"  # send, then close the connection without a byte: answer lost
    SLOW_SENT = "slow_sent"  # send, answer OK after `slow_seconds` (past a read timeout)


# Gateway codes come with their HTTP status; business codes (isv., isp.) with 200.
_STATUS = {
    "InvalidAccessKeyId.NotFound": 404,
    "SignatureDoesNotMatch": 400,
    "InvalidTimeStamp.Expired": 400,
    "SignatureNonceUsed": 400,
    "Throttling.User": 400,
    "ServiceUnavailable": 503,
    "InternalError": 500,
    "InvalidAction.NotFound": 404,
}
FaultSpec = Fault | tuple[Fault, str]


@dataclass(frozen=True, slots=True)
class Sms:
    """One SMS the fake sent."""

    to: str
    sign_name: str
    template_code: str
    code: str
    out_id: str | None
    biz_id: str
    sent_at: datetime


class _Refused(Exception):
    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.detail = detail


class _AliyunHandler(_Handler):
    server_version = "Tengine"

    @property
    def fake(self) -> FakeAliyun:  # type: ignore[override]
        return cast(_AliyunServer, self.server).aliyun

    def _serve(self) -> None:
        body = self._read_body()
        if body is None:
            self._drop()
            return
        params = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
        if self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            params.update(parse_qsl(body.decode(), keep_blank_values=True))
        fake = self.fake
        try:
            fake._check(self.command, params)
            if params.get("Action") == "QuerySendDetails":
                self._reply(200, fake._query(params))
                return
            if params.get("Action") != "SendSms":
                raise _Refused("InvalidAction.NotFound")
            choice, sms = fake._send(params)
        except _Refused as refused:
            self._reply(_status(refused.code), _error(refused.code, refused.detail))
            return
        if choice[0] is Fault.CODE:
            self._reply(_status(choice[1]), _error(choice[1]))
        elif choice[0] is Fault.ERROR_SENT:
            self._reply(500, _error("InternalError"))
        elif choice[0] in (Fault.DROP_UNSENT, Fault.DROP_SENT) or (
            choice[0] is Fault.SLOW_SENT and not fake._sleep(fake.slow_seconds)
        ):
            self._drop()  # a slow answer also drops when the fake stops mid-wait
        else:
            assert sms is not None
            answer = {"Code": "OK", "Message": "OK", "BizId": sms.biz_id}
            self._reply(200, answer | {"RequestId": _request_id()})

    def _reply(self, status: int, payload: Mapping[str, object]) -> None:
        body = json.dumps(payload, ensure_ascii=False).encode()
        self._answer(status, body, "application/json;charset=utf-8")


class _AliyunServer(_Server):
    def __init__(self, address: tuple[str, int], fake: FakeAliyun) -> None:
        self.fake = fake  # type: ignore[assignment]
        self.aliyun = fake  # the same, typed as what it is
        super(_Server, self).__init__(address, _AliyunHandler)


def _status(code: str) -> int:
    """Business errors (isv., isp.) come as HTTP 200; gateway errors as 4xx/5xx."""
    return _STATUS.get(code, 200 if code.startswith(("isv.", "isp.")) else 400)


def _request_id() -> str:
    return secrets.token_hex(16).upper()


def _error(code: str, detail: str = "") -> dict[str, object]:
    message = _MESSAGES.get(code, code) + detail
    if code.startswith(("isv.", "isp.")):  # a business error: no HostId nor Recommend
        return {"Code": code, "Message": message, "RequestId": _request_id()}
    return {
        "Code": code,
        "Message": message,
        "RequestId": _request_id(),
        "HostId": _HOST_ID,
        "Recommend": f"https://api.aliyun.com/troubleshoot?q={code}",
    }


class FakeAliyun(ServedFake):
    """A threaded local HTTP server that speaks Dysmsapi's RPC protocol."""

    def __init__(
        self,
        key_id: str = DEFAULT_KEY_ID,
        secret: str = DEFAULT_SECRET,
        *,
        sign_name: str = DEFAULT_SIGN_NAME,
        template_code: str = DEFAULT_TEMPLATE_CODE,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        slow_seconds: float = 7.0,
        records_delay: float = 0.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """Configure the fake; start() (or `with`) serves.

        `records_delay`: QuerySendDetails shows an SMS only this long after it was sent,
        as the real records lag. `clock` is the fake's "now" for the timestamp window.
        """
        super().__init__(host, port)
        self.secrets = {key_id: secret}
        self.sign_name = sign_name
        self.template_code = template_code
        self.latency = latency
        self.slow_seconds = slow_seconds
        self.records_delay = records_delay
        self.clock = clock
        self._sent: list[Sms] = []
        self._nonces: set[str] = set()
        self._script: deque[tuple[Fault, str]] = deque()
        self._chaos: tuple[float, tuple[tuple[Fault, str], ...]] = (0.0, ())
        self._rng = random.Random()
        self.requests: list[dict[str, str]] = []  # every request's parameters, oldest first

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """Such as "http://127.0.0.1:40123" (only after start())."""
        return self._url()

    def _bind(self) -> _AliyunServer:
        return _AliyunServer((self.host, self.port), self)

    # -- faults and inspection ------------------------------------------------------------

    def script(self, *faults: FaultSpec) -> None:
        """The next validated SendSms calls take these faults, in order, then OK."""
        with self._lock:
            self._script = deque(_choice(fault) for fault in faults)

    def chaos(self, rate: float, faults: Sequence[FaultSpec], seed: int | None = None) -> None:
        """Give each validated SendSms a fault with probability `rate`, drawn from `faults`."""
        with self._lock:
            self._chaos = (rate, tuple(_choice(fault) for fault in faults))
            self._rng = random.Random(seed)

    @property
    def sent(self) -> list[Sms]:
        """A copy of every SMS sent, oldest first."""
        with self._lock:
            return list(self._sent)

    def sms_to(self, to: str) -> list[Sms]:
        """The SMS sent to `to` (11 digits or +86...), oldest first."""
        national = to.removeprefix("+86")
        return [sms for sms in self.sent if sms.to == national]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Sms]:
        """Block until at least `count` SMS were sent; raise TimeoutError otherwise."""
        return self._wait_for(self._sent, count, timeout)

    def reset(self) -> None:
        """Forget sent SMS, requests, nonces, script and chaos."""
        with self._lock:
            self._sent.clear()
            self.requests.clear()
            self._nonces.clear()
            self._script.clear()
            self._chaos = (0.0, ())

    # -- used by the handler --------------------------------------------------------------

    def _check(self, method: str, params: dict[str, str]) -> None:
        """The gateway's checks, in the order research/aliyun.md §7 gives."""
        if self.latency:
            self._sleep(self.latency)
        with self._lock:
            self.requests.append(dict(params))
        got = params.pop("Signature", "")
        secret = self.secrets.get(params.get("AccessKeyId", ""))
        if secret is None:
            raise _Refused("InvalidAccessKeyId.NotFound")
        if not hmac.compare_digest(got, sign(method, params, secret)):
            stated = " server string to sign is:" + string_to_sign(method, params)
            raise _Refused("SignatureDoesNotMatch", stated)
        try:
            stamp = datetime.strptime(params.get("Timestamp", ""), "%Y-%m-%dT%H:%M:%SZ")
        except ValueError:
            raise _Refused("InvalidTimeStamp.Format") from None
        if abs(self.clock() - stamp.replace(tzinfo=UTC)) > _MAX_SKEW:
            raise _Refused("InvalidTimeStamp.Expired")
        common = ("SignatureMethod", "SignatureVersion", "Version")
        if tuple(params.get(name) for name in common) != ("HMAC-SHA1", "1.0", "2017-05-25"):
            raise _Refused("InvalidParameter")
        with self._lock:
            nonce = params.get("SignatureNonce", "")
            if not nonce or nonce in self._nonces:
                raise _Refused("SignatureNonceUsed")
            self._nonces.add(nonce)

    def _send(self, params: dict[str, str]) -> tuple[tuple[Fault, str], Sms | None]:
        to = params.get("PhoneNumbers", "")
        if len(to) != 11 or not to.isdigit() or not to.startswith("1"):
            raise _Refused("isv.MOBILE_NUMBER_ILLEGAL")
        if params.get("SignName") != self.sign_name:
            raise _Refused("isv.SMS_SIGNATURE_ILLEGAL")
        if params.get("TemplateCode") != self.template_code:
            raise _Refused("isv.SMS_TEMPLATE_ILLEGAL")
        try:
            variables = json.loads(params.get("TemplateParam", ""))
        except ValueError:
            raise _Refused("isv.INVALID_JSON_PARAM") from None
        if not isinstance(variables, dict) or not isinstance(variables.get("code"), str):
            raise _Refused("isv.TEMPLATE_MISSING_PARAMETERS")
        with self._lock:
            choice = self._pick()
            if choice[0] not in (Fault.OK, Fault.ERROR_SENT, Fault.DROP_SENT, Fault.SLOW_SENT):
                return choice, None
            sms = Sms(
                to=to, sign_name=self.sign_name, template_code=self.template_code,
                code=variables["code"], out_id=params.get("OutId"),
                biz_id=f"{random.randrange(10**17, 10**18)}^0", sent_at=self.clock(),
            )  # fmt: skip
            self._sent.append(sms)
            self._changed.notify_all()
            return choice, sms

    def _pick(self) -> tuple[Fault, str]:
        if self._script:
            return self._script.popleft()
        rate, faults = self._chaos
        if rate and self._rng.random() < rate:
            return self._rng.choice(faults)
        return (Fault.OK, "")

    def _query(self, params: dict[str, str]) -> dict[str, object]:
        """QuerySendDetails: one phone's SMS on one Beijing day, as far as the records show."""
        day, phone = params.get("SendDate", ""), params.get("PhoneNumber", "")
        shown = self.clock() - timedelta(seconds=self.records_delay)
        rows: list[dict[str, Any]] = [
            {
                "PhoneNum": sms.to,
                "SendStatus": 3,
                "ErrCode": "DELIVERED",
                "TemplateCode": sms.template_code,
                "OutId": sms.out_id or "",
                "Content": f"【{sms.sign_name}】您的验证码为{sms.code}",
                "SendDate": sms.sent_at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S"),
                "ReceiveDate": sms.sent_at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S"),
            }
            for sms in self.sent
            if sms.to == phone
            and sms.sent_at <= shown
            and sms.sent_at.astimezone(BEIJING).strftime("%Y%m%d") == day
        ]
        # Pages as Aliyun pages them: PageSize (at most 50) rows of page CurrentPage.
        size = min(50, max(1, int(params.get("PageSize", "10") or 10)))
        page = max(1, int(params.get("CurrentPage", "1") or 1))
        return {
            "Code": "OK",
            "Message": "OK",
            "RequestId": _request_id(),
            "TotalCount": len(rows),
            "SmsSendDetailDTOs": {"SmsSendDetailDTO": rows[(page - 1) * size : page * size]},
        }


def _choice(spec: FaultSpec) -> tuple[Fault, str]:
    fault, code = (spec, "") if isinstance(spec, Fault) else spec
    if fault is Fault.CODE and not code:
        raise ValueError("Fault.CODE needs the Code to answer")
    return fault, code
