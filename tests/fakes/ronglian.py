"""Local fake of Ronglian's (容联云) TemplateSMS REST API with scriptable faults."""

from __future__ import annotations

import argparse
import base64
import binascii
import enum
import hashlib
import json
import random
import re
import secrets
import socketserver
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from tests.fakes.serving import ServedFake, shutdown

__all__ = [
    "DEFAULT_ACC_ID",
    "DEFAULT_ACC_TOKEN",
    "DEFAULT_APP_ID",
    "STATUS_MESSAGES",
    "FakeRonglian",
    "Fault",
    "FaultChoice",
    "FaultSpec",
    "Policy",
    "RawRequest",
    "Sms",
    "main",
    "sign",
]

SHANGHAI = ZoneInfo("Asia/Shanghai")
API_VERSION = "2013-12-26"
DEFAULT_ACC_ID = "8a216da8fake0acc0000000000000001"
DEFAULT_ACC_TOKEN = "faketoken0000000000000000000000a"
DEFAULT_APP_ID = "8a216da8fakeapp00000000000000001"

OK_CODE = "000000"
#: statusMsg answered for each statusCode the fake produces (wording approximates Ronglian's).
STATUS_MESSAGES: dict[str, str] = {
    "111100": "【账号】请求地址AccountSid有误",
    "111104": "【账号】请求包头Authorization参数为空",
    "111105": "【账号】请求包头Authorization参数Base64解码失败或格式有误",
    "111106": "【账号】请求包头Authorization参数解码后时间戳过期",
    "111107": "【账号】请求包头Authorization参数解码后时间格式有误",
    "111108": "【账号】请求地址SigParameter参数为空",
    "111109": "【账号】请求地址SigParameter校验失败",
    "111172": "【账号】应用appId有误",
    "112300": "【短信】接收短信的手机号码为空",
    "160031": "【短信】参数解析失败",
    "160042": "【短信】号码格式有误",
    "160050": "【短信】短信发送失败",
    "160052": "【短信】模板数据格式有误",
    "160054": "【短信】请求重复",
    "160055": "【短信】用户请求reqId格式有误",
    "160057": "【短信】短信模板ID有误",
    "172001": "网络错误",
}

_PATH_RE = re.compile(rf"^/{API_VERSION}/Accounts/([^/]+)/SMS/TemplateSMS$")
_TS_RE = re.compile(r"^[0-9]{14}$")
_TEMPLATE_RE = re.compile(r"^[0-9]+$")
_MOBILE_RE = re.compile(r"^1[0-9]{10}$")
_REQ_ID_RE = re.compile(r"^[A-Za-z0-9]{1,32}$")
_MAX_SKEW = timedelta(hours=24)
_MAX_BODY = 1 << 20
_JSON_TYPE = "application/json;charset=utf-8"
_HTML_500 = (
    b"<html><head><title>500 Internal Server Error</title></head>"
    b"<body><h1>Internal Server Error</h1><hr><center>nginx</center></body></html>"
)
_GARBAGE = b"<html><body>\xe7\xb3\xbb\xe7\xbb\x9f\xe7\xb9\x81\xe5\xbf\x99 {statusCode:"
_HTML_404 = b"<html><body><h1>404 Not Found</h1></body></html>"


class Fault(enum.Enum):
    """How the fake treats a request that passed validation."""

    OK = "ok"
    STATUS = "status"
    HTTP_500 = "http_500"
    DROP_UNSENT = "drop_unsent"
    DROP_SENT = "drop_sent"
    SLOW_SENT = "slow_sent"
    GARBAGE = "garbage"
    # A refusal (its statusCode, nothing sent) written one byte every `drip_seconds`, each
    # well inside any read timeout, its last byte held until a later request comes in (at
    # most `slow_seconds` more): a slow server whose answer outlives the caller's lease
    # while another attempt at the same message arrives.
    DRIP = "drip"


@dataclass(frozen=True, slots=True)
class FaultChoice:
    """A fault picked for one request; `code` is the statusCode for Fault.STATUS and DRIP."""

    fault: Fault
    code: str = ""

    @property
    def sends(self) -> bool:
        """Whether this fault accepts and records the SMS."""
        return self.fault in (Fault.OK, Fault.DROP_SENT, Fault.SLOW_SENT)


FaultSpec = Fault | tuple[Fault, str]
Policy = Callable[[dict[str, object]], FaultSpec | None]


@dataclass(frozen=True, slots=True)
class Sms:
    """One SMS the fake accepted (counted as sent)."""

    to: str
    template_id: str
    datas: tuple[str, ...]
    req_id: str | None
    sid: str
    received_at: float


@dataclass(frozen=True, slots=True)
class RawRequest:
    """One HTTP request as it arrived, plus what the fake did with it.

    `status` is the statusCode answered ("000000", "111109", ...), the HTTP status as
    text when there was no JSON answer ("404", "500"), or "" when nothing was answered
    (drops) or the answer was garbage; `fault` is the fault applied (Fault.OK if none).
    """

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: str
    fault: Fault
    http_status: int | None
    received_at: float = field(compare=False)

    def header(self, name: str) -> str | None:
        """Return a header value, matching the name case-insensitively."""
        lname = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lname:
                return value
        return None


def sign(acc_id: str, acc_token: str, timestamp: str) -> str:
    """Return the `sig` query parameter Ronglian expects for this timestamp."""
    digest = hashlib.md5(f"{acc_id}{acc_token}{timestamp}".encode(), usedforsecurity=False)
    return digest.hexdigest().upper()


def beijing_timestamp(when: datetime | None = None) -> str:
    """Return `when` (default now) as yyyyMMddHHmmss in Asia/Shanghai."""
    return (when or datetime.now(SHANGHAI)).astimezone(SHANGHAI).strftime("%Y%m%d%H%M%S")


def _to_choice(spec: FaultSpec) -> FaultChoice:
    refusing = (Fault.STATUS, Fault.DRIP)
    if isinstance(spec, Fault):
        fault, code = spec, ("160050" if spec in refusing else "")
    else:
        fault, code = spec
        if not isinstance(fault, Fault) or not isinstance(code, str):
            raise TypeError(f"fault spec must be Fault or (Fault, str), got {spec!r}")
    if fault in refusing and (not code or code == OK_CODE):
        raise ValueError(f"{fault} needs an error statusCode other than 000000")
    return FaultChoice(fault, code if fault in refusing else "")


def _normalize_mobile(to: str) -> str:
    digits = to.strip()
    if digits.startswith("+86"):
        digits = digits[3:]
    if not _MOBILE_RE.match(digits):
        raise ValueError(f"not a mainland mobile number (11 digits or +86...): {to!r}")
    return digits


def _parse_timestamp(ts: str) -> datetime | None:
    if not _TS_RE.match(ts):
        return None
    try:
        return datetime(
            int(ts[0:4]),
            int(ts[4:6]),
            int(ts[6:8]),
            int(ts[8:10]),
            int(ts[10:12]),
            int(ts[12:14]),
            tzinfo=SHANGHAI,
        )
    except ValueError:
        return None


class _Rejected(Exception):
    """Validation failed; answer this statusCode."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # FakeRonglian.stop() closes connections and joins threads itself
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], fake: FakeRonglian) -> None:
        self.fake = fake
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), which may block on DNS.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up (timeouts, drops) are expected; stay quiet.
        return


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeRonglian/1.0"
    sys_version = ""
    disable_nagle_algorithm = True

    @property
    def fake(self) -> FakeRonglian:
        return cast(_Server, self.server).fake

    def setup(self) -> None:
        super().setup()
        self.fake._register(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.fake._unregister(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        self._serve()

    def do_GET(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    # -- plumbing -------------------------------------------------------------------------

    def _read_body(self) -> bytes | None:
        """Read the request body; None when the client sent less than it announced."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            total = 0
            while True:
                line = self.rfile.readline(1024)
                if not line:
                    return None
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > _MAX_BODY:
                    return None
                chunk = self.rfile.read(size)
                self.rfile.readline(1024)
                if len(chunk) != size:
                    return None
                chunks.append(chunk)
        length_text = self.headers.get("Content-Length", "0") or "0"
        try:
            length = int(length_text)
        except ValueError:
            return None
        if length < 0 or length > _MAX_BODY:
            return None
        body = self.rfile.read(length) if length else b""
        return body if len(body) == length else None

    def _drop(self) -> None:
        """Close the TCP connection without writing a single response byte."""
        self.close_connection = True
        shutdown(self.connection)

    def _answer(
        self, http_status: int, body: bytes, content_type: str, *, drip: bool = False
    ) -> None:
        try:
            phrase = HTTPStatus(http_status).phrase
        except ValueError:
            phrase = ""
        head = [
            f"HTTP/1.1 {http_status} {phrase}",
            f"Server: {self.server_version}",
            f"Date: {formatdate(usegmt=True)}",
            f"Content-Type: {content_type}",
            f"Content-Length: {len(body)}",
        ]
        if self.close_connection:
            head.append("Connection: close")
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        try:
            if drip:
                self._drip(data)
            else:
                self.wfile.write(data)
        except OSError:
            self.close_connection = True

    def _drip(self, data: bytes) -> None:
        """Write `data` as Fault.DRIP does (see there)."""
        fake = self.fake
        seen = len(fake.requests)  # this one included
        sent = 0
        while sent < len(data) - 1 and len(fake.requests) == seen:
            self.wfile.write(data[sent : sent + 1])
            sent += 1
            if not fake._sleep(fake.drip_seconds):
                raise ConnectionAbortedError("the fake is stopping")
        held = time.monotonic() + fake.slow_seconds
        while len(fake.requests) == seen and time.monotonic() < held:
            if not fake._sleep(fake.drip_seconds):
                raise ConnectionAbortedError("the fake is stopping")
        self.wfile.write(data[sent:])

    def _answer_json(self, payload: dict[str, object], *, drip: bool = False) -> None:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        self._answer(200, body, _JSON_TYPE, drip=drip)

    def _serve(self) -> None:
        fake = self.fake
        received_at = time.time()
        body = self._read_body()
        headers = dict(self.headers.items())
        if body is None:  # truncated or unreadable body: nothing sensible to answer
            self._drop()
            return
        if fake.latency > 0:
            fake._sleep(fake.latency)

        def record(status: str, fault: Fault, http_status: int | None) -> RawRequest:
            return RawRequest(
                method=self.command,
                path=self.path,
                headers=headers,
                body=body,
                status=status,
                fault=fault,
                http_status=http_status,
                received_at=received_at,
            )

        split = urlsplit(self.path)
        match = _PATH_RE.match(split.path)
        if self.command != "POST" or match is None:
            fake._record_request(record("404", Fault.OK, 404))
            self._answer(404, _HTML_404, "text/html")
            return
        try:
            auth = self.headers.get("Authorization")
            parsed = fake._validate(match.group(1), split.query, auth, body)
        except _Rejected as rejected:
            fake._record_request(record(rejected.code, Fault.OK, 200))
            self._answer_json(_error(rejected.code))
            return

        choice, sms = fake._decide(parsed, record)
        if choice is None:  # duplicate reqId
            self._answer_json(_error("160054"))
            return
        fault = choice.fault
        if fault is Fault.STATUS:
            self._answer_json(_error(choice.code))
        elif fault is Fault.DRIP:
            self._answer_json(_error(choice.code), drip=True)
        elif fault is Fault.HTTP_500:
            self._answer(500, _HTML_500, "text/html")
        elif fault is Fault.GARBAGE:
            self._answer(200, _GARBAGE, _JSON_TYPE)
        elif fault in (Fault.DROP_UNSENT, Fault.DROP_SENT):
            self._drop()
        else:
            assert sms is not None
            if fault is Fault.SLOW_SENT and not fake._sleep(fake.slow_seconds):
                self._drop()  # the fake is stopping
                return
            created = beijing_timestamp(datetime.fromtimestamp(sms.received_at, SHANGHAI))
            self._answer_json(
                {
                    "statusCode": OK_CODE,
                    "templateSMS": {"dateCreated": created, "smsMessageSid": sms.sid},
                }
            )


def _error(code: str) -> dict[str, object]:
    return {"statusCode": code, "statusMsg": STATUS_MESSAGES.get(code, "【短信】其他错误")}


@dataclass(frozen=True, slots=True)
class _Parsed:
    body: dict[str, object]
    to: str
    template_id: str
    datas: tuple[str, ...]
    req_id: str | None


class FakeRonglian(ServedFake):
    """A threaded local HTTP server that speaks Ronglian's TemplateSMS protocol."""

    def __init__(
        self,
        acc_id: str = DEFAULT_ACC_ID,
        acc_token: str = DEFAULT_ACC_TOKEN,
        app_id: str = DEFAULT_APP_ID,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        slow_seconds: float = 7.0,
        drip_seconds: float = 0.1,
        clock: Callable[[], datetime] = lambda: datetime.now(SHANGHAI),
    ) -> None:
        """Configure the fake; call start() (or use `with`) to serve.

        `clock` is the fake's "now" for the 24-hour timestamp window: a test that must not
        depend on when it runs freezes it, or moves it on.
        """
        super().__init__(host, port)
        self.acc_id = acc_id
        self.acc_token = acc_token
        self.app_id = app_id
        self.latency = latency
        self.slow_seconds = slow_seconds
        self.drip_seconds = drip_seconds
        self.clock = clock
        self._accepted: list[Sms] = []
        self._requests: list[RawRequest] = []
        self._req_ids: set[str] = set()
        self._script: deque[FaultChoice] = deque()
        self._chaos_rate = 0.0
        self._chaos_faults: tuple[FaultChoice, ...] = ()
        self._rng = random.Random()
        self._policy: Policy | None = None

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """Base URL such as "http://127.0.0.1:8883" (only after start())."""
        return self._url()

    def _bind(self) -> _Server:
        return _Server((self.host, self.port), self)

    def serve_until_interrupted(self) -> None:
        """Block the calling thread until KeyboardInterrupt, then stop."""
        try:
            while not self._stopping.wait(3600):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    # -- fault control --------------------------------------------------------------------

    def script(self, *faults: FaultSpec) -> None:
        """Replace the pending script: the next validated requests take these faults, then OK."""
        choices = [_to_choice(f) for f in faults]
        with self._lock:
            self._script = deque(choices)

    def chaos(self, rate: float, faults: Sequence[FaultSpec], seed: int | None = None) -> None:
        """Give each validated request a fault with probability `rate`, uniformly from `faults`."""
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be within [0, 1], got {rate}")
        choices = tuple(_to_choice(f) for f in faults)
        if rate > 0 and not choices:
            raise ValueError("chaos needs at least one fault when rate > 0")
        with self._lock:
            self._chaos_rate = rate
            self._chaos_faults = choices if rate > 0 else ()
            self._rng = random.Random(seed)

    def set_policy(self, policy: Policy | None) -> None:
        """Install a hook that picks a fault from the parsed body (None = no opinion).

        It runs with the fake's lock held, after the script and before chaos.
        """
        with self._lock:
            self._policy = policy

    # -- inspection -----------------------------------------------------------------------

    @property
    def accepted(self) -> list[Sms]:
        """A copy of every accepted SMS, oldest first."""
        with self._lock:
            return list(self._accepted)

    @property
    def requests(self) -> list[RawRequest]:
        """A copy of every request answered (or dropped), oldest first."""
        with self._lock:
            return list(self._requests)

    def sms_to(self, to: str) -> list[Sms]:
        """Accepted SMS to `to` (11 digits or +86 E.164), oldest first."""
        mobile = _normalize_mobile(to)
        with self._lock:
            return [s for s in self._accepted if s.to == mobile]

    def last_code(self, to: str) -> str | None:
        """datas[0] of the latest SMS accepted for `to`, or None."""
        sent = self.sms_to(to)
        return sent[-1].datas[0] if sent and sent[-1].datas else None

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Sms]:
        """Block until at least `count` SMS were accepted; raise TimeoutError otherwise."""
        return self._wait_for(self._accepted, count, timeout)

    def reset(self) -> None:
        """Forget accepted SMS, requests, used reqIds, script, chaos and policy."""
        with self._lock:
            self._accepted.clear()
            self._requests.clear()
            self._req_ids.clear()
            self._script.clear()
            self._chaos_rate, self._chaos_faults = 0.0, ()
            self._policy = None

    # -- internals used by the handler ----------------------------------------------------

    def _record_request(self, request: RawRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _validate(
        self, path_sid: str, query: str, authorization: str | None, raw: bytes
    ) -> _Parsed:
        if path_sid != self.acc_id:
            raise _Rejected("111100")
        if not authorization:
            raise _Rejected("111104")
        try:
            decoded = base64.b64decode(authorization.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise _Rejected("111105") from None
        auth_sid, sep, timestamp = decoded.partition(":")
        if not sep or auth_sid != path_sid:
            raise _Rejected("111105")
        when = _parse_timestamp(timestamp)
        if when is None:
            raise _Rejected("111107")
        if abs(self.clock() - when) > _MAX_SKEW:
            raise _Rejected("111106")
        sigs = parse_qs(query, keep_blank_values=True).get("sig")
        if not sigs or not sigs[0]:
            raise _Rejected("111108")
        if sigs[0] != sign(self.acc_id, self.acc_token, timestamp):
            raise _Rejected("111109")

        try:
            body = json.loads(raw)
        except ValueError:
            raise _Rejected("160031") from None
        if not isinstance(body, dict):
            raise _Rejected("160031")
        if body.get("appId") != self.app_id:
            raise _Rejected("111172")
        template_id = body.get("templateId")
        if not isinstance(template_id, str) or not _TEMPLATE_RE.match(template_id):
            raise _Rejected("160057")
        to = body.get("to")
        if to is None or to == "":
            raise _Rejected("112300")
        if not isinstance(to, str) or not _MOBILE_RE.match(to):
            raise _Rejected("160042")
        datas = body.get("datas", [])
        if not isinstance(datas, list) or not all(isinstance(d, str) for d in datas):
            raise _Rejected("160052")
        req_id = body.get("reqId")
        if req_id is not None and (not isinstance(req_id, str) or not _REQ_ID_RE.match(req_id)):
            raise _Rejected("160055")
        return _Parsed(body, to, template_id, tuple(cast(list[str], datas)), req_id)

    def _decide(
        self, parsed: _Parsed, record: Callable[[str, Fault, int | None], RawRequest]
    ) -> tuple[FaultChoice | None, Sms | None]:
        """Atomically check reqId, pick a fault and record; (None, None) means duplicate."""
        with self._lock:
            if parsed.req_id is not None and parsed.req_id in self._req_ids:
                self._requests.append(record("160054", Fault.OK, 200))
                return None, None
            choice = self._pick(parsed.body)
            sms: Sms | None = None
            if choice.sends:
                sms = Sms(
                    to=parsed.to,
                    template_id=parsed.template_id,
                    datas=parsed.datas,
                    req_id=parsed.req_id,
                    sid=secrets.token_hex(16),
                    received_at=time.time(),
                )
                self._accepted.append(sms)
                if parsed.req_id is not None:
                    self._req_ids.add(parsed.req_id)
                self._changed.notify_all()
            status, http_status = _outcome(choice)
            self._requests.append(record(status, choice.fault, http_status))
            return choice, sms

    def _pick(self, body: dict[str, object]) -> FaultChoice:
        if self._script:
            return self._script.popleft()
        if self._policy is not None:
            spec = self._policy(body)
            if spec is not None:
                return _to_choice(spec)
        if self._chaos_rate > 0 and self._rng.random() < self._chaos_rate:
            return self._rng.choice(self._chaos_faults)
        return FaultChoice(Fault.OK)


def _outcome(choice: FaultChoice) -> tuple[str, int | None]:
    """(status, http_status) recorded for a request that passed validation."""
    match choice.fault:
        case Fault.OK | Fault.SLOW_SENT:
            return OK_CODE, 200
        case Fault.STATUS | Fault.DRIP:
            return choice.code, 200
        case Fault.HTTP_500:
            return "500", 500
        case Fault.GARBAGE:
            return "", 200
        case _:
            return "", None


def main(argv: Sequence[str] | None = None) -> None:
    """Serve a FakeRonglian from the command line until Ctrl-C."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8883)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per answer")
    parser.add_argument("--slow-seconds", type=float, default=7.0)
    parser.add_argument("--acc-id", default=DEFAULT_ACC_ID)
    parser.add_argument("--acc-token", default=DEFAULT_ACC_TOKEN)
    parser.add_argument("--app-id", default=DEFAULT_APP_ID)
    args = parser.parse_args(argv)
    fake = FakeRonglian(
        args.acc_id,
        args.acc_token,
        args.app_id,
        host=args.host,
        port=args.port,
        latency=args.latency,
        slow_seconds=args.slow_seconds,
    ).start()
    try:
        print(f"fake ronglian listening on {fake.base_url}", flush=True)
        fake.serve_until_interrupted()
    except KeyboardInterrupt:  # Ctrl-C between the banner and the wait: still a clean stop
        fake.stop()


if __name__ == "__main__":
    main()
