"""Tests for the local Ronglian TemplateSMS fake (tests/fakes/ronglian.py)."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
import urllib3
from ronglian_sms_sdk import SmsSDK

from tests.fakes.ronglian import FakeRonglian, Fault, Sms
from tests.helpers import local_timezone

SHANGHAI = ZoneInfo("Asia/Shanghai")
ACC = "8a216da8fake0acc0000000000000001"
TOKEN = "faketoken0000000000000000000000a"
APP = "8a216da8fakeapp00000000000000001"
PATH = f"/2013-12-26/Accounts/{ACC}/SMS/TemplateSMS"
MOBILE = "13800138000"
DEFAULT = object()  # "compute the correct value" marker for post()


# -- fixtures and helpers ------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[FakeRonglian]:
    with FakeRonglian(ACC, TOKEN, APP, slow_seconds=0.5) as fake:
        yield fake


@pytest.fixture
def fake(server: FakeRonglian) -> Iterator[FakeRonglian]:
    clock = server.clock
    server.reset()
    server.latency, server.slow_seconds = 0.0, 0.5
    yield server
    server.reset()
    server.latency, server.slow_seconds, server.clock = 0.0, 0.5, clock


@pytest.fixture
def tz_shanghai() -> Iterator[None]:
    """Run with the process-local timezone set to Beijing time, as on a production host."""
    with local_timezone("Asia/Shanghai"):
        yield


def ts(delta: timedelta = timedelta(0)) -> str:
    return (datetime.now(SHANGHAI) + delta).strftime("%Y%m%d%H%M%S")


def sig(timestamp: str, acc: str = ACC, token: str = TOKEN) -> str:
    return hashlib.md5(f"{acc}{token}{timestamp}".encode()).hexdigest().upper()  # noqa: S324


def auth(timestamp: str, acc: str = ACC) -> str:
    return base64.b64encode(f"{acc}:{timestamp}".encode()).decode()


def body(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"to": MOBILE, "appId": APP, "templateId": "1", "datas": ["123456", "5"]}
    for key, value in overrides.items():
        if value is DEFAULT:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def addr(fake: FakeRonglian) -> tuple[str, int]:
    split = urlsplit(fake.base_url)
    assert split.hostname is not None
    assert split.port is not None
    return split.hostname, split.port


def post(
    fake: FakeRonglian,
    payload: dict[str, Any] | list[Any] | bytes | None = None,
    *,
    timestamp: str | None = None,
    signature: object = DEFAULT,
    authorization: object = DEFAULT,
    path: str = PATH,
    method: str = "POST",
    timeout: float = 3.0,
) -> tuple[int, bytes]:
    """Send one request over a fresh http.client connection; return (status, body)."""
    stamp = timestamp if timestamp is not None else ts()
    raw = payload if isinstance(payload, bytes) else json.dumps(payload or body()).encode()
    url = path
    if signature is DEFAULT:
        url += f"?sig={sig(stamp)}"
    elif signature is not None:
        url += f"?sig={signature}"
    headers = {"Content-Type": "application/json;charset=utf-8", "Accept": "application/json"}
    if authorization is DEFAULT:
        headers["Authorization"] = auth(stamp)
    elif authorization is not None:
        headers["Authorization"] = str(authorization)
    conn = http.client.HTTPConnection(*addr(fake), timeout=timeout)
    try:
        conn.request(method, url, body=raw, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def status_of(answer: tuple[int, bytes]) -> str:
    http_status, raw = answer
    assert http_status == 200
    code = json.loads(raw)["statusCode"]
    assert isinstance(code, str)
    return code


def sdk_for(fake: FakeRonglian, acc: str = ACC, token: str = TOKEN, app: str = APP) -> SmsSDK:
    sdk = SmsSDK(acc, token, app)
    sdk.url = fake.base_url
    return sdk


# -- the unmodified SDK ---------------------------------------------------------------------


@pytest.mark.usefixtures("tz_shanghai")
def test_sdk_send_is_accepted_and_recorded(fake: FakeRonglian) -> None:
    answer = json.loads(sdk_for(fake).sendMessage("1", MOBILE, ("123456", "5")))
    assert answer["statusCode"] == "000000"
    sms_sid = answer["templateSMS"]["smsMessageSid"]
    assert re.fullmatch(r"[0-9a-f]{32}", sms_sid)
    assert re.fullmatch(r"[0-9]{14}", answer["templateSMS"]["dateCreated"])

    [sms] = fake.accepted
    assert sms == Sms(MOBILE, "1", ("123456", "5"), None, sms_sid, sms.received_at)
    assert fake.sms_to(MOBILE) == fake.sms_to("+86" + MOBILE) == [sms]
    assert fake.last_code(MOBILE) == "123456"
    assert fake.last_code("13900139000") is None

    [req] = fake.requests
    assert req.status == "000000"
    assert req.fault is Fault.OK
    assert req.header("content-type") == "application/json;charset=utf-8"
    assert req.header("Accept") == "application/json"
    authorization = req.header("Authorization")
    assert authorization is not None
    acc, _, stamp = base64.b64decode(authorization).decode().partition(":")
    assert acc == ACC
    assert req.path == f"{PATH}?sig={sig(stamp)}"
    assert abs(
        datetime.strptime(stamp, "%Y%m%d%H%M%S").replace(tzinfo=SHANGHAI) - datetime.now(SHANGHAI)
    ) < timedelta(minutes=1)


@pytest.mark.parametrize("tz", ["UTC", "America/Los_Angeles", "Pacific/Kiritimati"])
def test_sdk_timestamp_in_any_real_timezone_is_inside_the_24h_window(
    fake: FakeRonglian, tz: str
) -> None:
    # The SDK signs with time.localtime(); every real UTC offset is < 24 h from Beijing,
    # so a host without TZ=Asia/Shanghai still gets accepted (as by the real service).
    with local_timezone(tz):
        answer = json.loads(sdk_for(fake).sendMessage("1", MOBILE, ("1", "5")))
    assert answer["statusCode"] == "000000"


@pytest.mark.usefixtures("tz_shanghai")
@pytest.mark.parametrize(
    ("acc", "token", "app", "code"),
    [
        (ACC, "wrongtoken0000000000000000000000", APP, "111109"),
        ("8a216da8fake0acc0000000000000999", TOKEN, APP, "111100"),
        (ACC, TOKEN, "8a216da8fakeapp00000000000000999", "111172"),
    ],
)
def test_sdk_with_wrong_credentials_is_rejected(
    fake: FakeRonglian, acc: str, token: str, app: str, code: str
) -> None:
    answer = json.loads(sdk_for(fake, acc, token, app).sendMessage("1", MOBILE, ("1", "5")))
    assert answer["statusCode"] == code
    assert answer["statusMsg"]
    assert fake.accepted == []
    assert [r.status for r in fake.requests] == [code]


@pytest.mark.usefixtures("tz_shanghai")
def test_sdk_maps_faults_to_its_own_codes(fake: FakeRonglian) -> None:
    fake.script(Fault.DROP_SENT, Fault.HTTP_500, (Fault.STATUS, "160050"))
    sdk = sdk_for(fake)
    assert json.loads(sdk.sendMessage("1", MOBILE, ("1",)))["statusCode"] == "172001"
    assert json.loads(sdk.sendMessage("1", MOBILE, ("2",)))["statusCode"] == "500"
    assert json.loads(sdk.sendMessage("1", MOBILE, ("3",)))["statusCode"] == "160050"
    assert json.loads(sdk.sendMessage("1", MOBILE, ("4",)))["statusCode"] == "000000"
    assert [s.datas for s in fake.accepted] == [("1",), ("4",)]


# -- validation -----------------------------------------------------------------------------


def test_happy_path_over_http_client(fake: FakeRonglian) -> None:
    assert status_of(post(fake, body(reqId="abcXYZ123"))) == "000000"
    [sms] = fake.accepted
    assert sms.req_id == "abcXYZ123"


def test_unknown_path_is_404(fake: FakeRonglian) -> None:
    assert post(fake, path="/2013-12-26/Accounts/x/SMS/Other")[0] == 404
    assert post(fake, path="/nope")[0] == 404
    assert post(fake, method="GET")[0] == 404
    assert fake.accepted == []
    assert [r.status for r in fake.requests] == ["404", "404", "404"]


def test_wrong_account_in_path_is_111100_not_404(fake: FakeRonglian) -> None:
    other = "8a216da8fake0acc0000000000000999"
    stamp = ts()
    answer = post(
        fake,
        path=PATH.replace(ACC, other),
        timestamp=stamp,
        signature=sig(stamp, acc=other),
        authorization=auth(stamp, acc=other),
    )
    assert status_of(answer) == "111100"


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "111104"),
        ("", "111104"),
        ("!!!not-base64!!!", "111105"),
        (base64.b64encode(b"no-colon-here").decode(), "111105"),
        (base64.b64encode(b"\xff\xfe:20240101000000").decode(), "111105"),
        ("OTHERSID", "111105"),
    ],
)
def test_authorization_errors(fake: FakeRonglian, authorization: str | None, code: str) -> None:
    stamp = ts()
    if authorization == "OTHERSID":
        authorization = auth(stamp, acc="8a216da8fake0acc0000000000000999")
    answer = post(fake, timestamp=stamp, authorization=authorization)
    assert status_of(answer) == code
    assert fake.accepted == []


@pytest.mark.parametrize(
    ("stamp", "code"),
    [
        ("2024010100000", "111107"),
        ("202401010000000", "111107"),
        ("2024-01-01 000", "111107"),
        ("20241301000000", "111107"),
        ("20240230000000", "111107"),
        ("20240101250000", "111107"),
        ("２０２４０１０１０００００", "111107"),
    ],
)
def test_malformed_timestamps(fake: FakeRonglian, stamp: str, code: str) -> None:
    assert status_of(post(fake, timestamp=stamp)) == code


# Offsets, not stamps: a stamp made at collection goes stale while the rest of the suite
# runs (5 minutes later, "now + 24 h 5 min" is inside the window). Each stamp is made from
# the fake's own clock when the request is sent.
@pytest.mark.parametrize(
    ("offset", "code"),
    [
        (-timedelta(hours=24, minutes=5), "111106"),
        (timedelta(hours=24, minutes=5), "111106"),
        (-timedelta(hours=23, minutes=50), "000000"),
        (timedelta(hours=23, minutes=50), "000000"),
    ],
)
@pytest.mark.parametrize(
    "elapsed", [timedelta(0), timedelta(minutes=10)], ids=["now", "10-min-later"]
)
def test_timestamp_window(
    fake: FakeRonglian, offset: timedelta, code: str, elapsed: timedelta
) -> None:
    # given a fake whose clock has moved on by `elapsed` since the test was collected
    fake.clock = lambda: datetime.now(SHANGHAI) + elapsed
    # when a request is stamped `offset` away from the fake's now
    stamp = (fake.clock() + offset).strftime("%Y%m%d%H%M%S")
    # then only stamps inside the 24-hour window are accepted
    assert status_of(post(fake, timestamp=stamp)) == code


def test_sig_checks(fake: FakeRonglian) -> None:
    stamp = ts()
    assert status_of(post(fake, timestamp=stamp, signature=None)) == "111108"
    assert status_of(post(fake, timestamp=stamp, signature="")) == "111108"
    assert status_of(post(fake, timestamp=stamp, signature=sig(stamp).lower())) == "111109"
    assert status_of(post(fake, timestamp=stamp, signature=sig(stamp, token="x"))) == "111109"
    # the sig must be made with the Authorization timestamp
    assert status_of(post(fake, timestamp=stamp, signature=sig(ts(timedelta(1))))) == "111109"
    assert fake.accepted == []


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"not json", "160031"),
        (b"", "160031"),
        ([1, 2], "160031"),
        (body(appId="8a216da8fakeapp00000000000000999"), "111172"),
        (body(appId=DEFAULT), "111172"),
        (body(templateId=DEFAULT), "160057"),
        (body(templateId="a1"), "160057"),
        (body(templateId=""), "160057"),
        (body(templateId=1), "160057"),
        (body(to=DEFAULT), "112300"),
        (body(to=""), "112300"),
        (body(to="1380013800"), "160042"),
        (body(to="138001380001"), "160042"),
        (body(to="23800138000"), "160042"),
        (body(to="+8613800138000"), "160042"),
        (body(to="13800138000,13900139000"), "160042"),
        (body(to=13800138000), "160042"),
        (body(datas="123456"), "160052"),
        (body(datas=[123456]), "160052"),
        (body(datas={"code": "1"}), "160052"),
        (body(reqId=""), "160055"),
        (body(reqId="a" * 33), "160055"),
        (body(reqId="abc-123"), "160055"),
        (body(reqId=42), "160055"),
        (body(datas=DEFAULT), "000000"),
        (body(reqId="a" * 32), "000000"),
    ],
)
def test_body_checks(fake: FakeRonglian, payload: Any, code: str) -> None:
    assert status_of(post(fake, payload)) == code
    assert len(fake.accepted) == (1 if code == "000000" else 0)
    assert fake.requests[-1].status == code


def test_repeated_req_id_is_160054_and_not_counted(fake: FakeRonglian) -> None:
    assert status_of(post(fake, body(reqId="r1"))) == "000000"
    _, raw = post(fake, body(reqId="r1", datas=["999999"]))
    answer = json.loads(raw)
    assert answer["statusCode"] == "160054"
    assert "请求重复" in answer["statusMsg"]
    assert len(fake.accepted) == 1
    assert fake.last_code(MOBILE) == "123456"


def test_concurrent_same_req_id_is_accepted_once(fake: FakeRonglian) -> None:
    codes: list[str] = []
    lock = threading.Lock()

    def send() -> None:
        code = status_of(post(fake, body(reqId="same")))
        with lock:
            codes.append(code)

    threads = [threading.Thread(target=send) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == ["000000"] + ["160054"] * 19
    assert len(fake.accepted) == 1


# -- faults ---------------------------------------------------------------------------------


def test_status_fault(fake: FakeRonglian) -> None:
    fake.script((Fault.STATUS, "160050"), Fault.STATUS, (Fault.STATUS, "160038"))
    assert status_of(post(fake)) == "160050"
    assert status_of(post(fake)) == "160050"  # bare Fault.STATUS defaults to "send failed"
    assert status_of(post(fake)) == "160038"
    assert fake.accepted == []
    assert status_of(post(fake)) == "000000"  # script exhausted
    assert [r.fault for r in fake.requests] == [Fault.STATUS] * 3 + [Fault.OK]


def test_http_500_and_garbage_faults(fake: FakeRonglian) -> None:
    fake.script(Fault.HTTP_500, Fault.GARBAGE)
    http_status, raw = post(fake)
    assert http_status == 500
    assert b"<html" in raw
    http_status, raw = post(fake)
    assert http_status == 200
    with pytest.raises(ValueError, match=r"Expecting|Unexpected|Invalid"):
        json.loads(raw)
    assert fake.accepted == []


def raw_exchange(fake: FakeRonglian, payload: dict[str, Any] | None = None) -> bytes:
    """Send one valid request on a raw socket; return every byte received until EOF."""
    stamp = ts()
    data = json.dumps(payload or body()).encode()
    request = (
        f"POST {PATH}?sig={sig(stamp)} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth(stamp)}\r\n"
        f"Content-Type: application/json;charset=utf-8\r\nContent-Length: {len(data)}\r\n\r\n"
    ).encode() + data
    with socket.create_connection(addr(fake), timeout=3.0) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def test_drop_unsent_closes_without_a_byte_and_records_nothing(fake: FakeRonglian) -> None:
    fake.script(Fault.DROP_UNSENT, Fault.DROP_UNSENT)
    assert raw_exchange(fake) == b""
    with pytest.raises(http.client.RemoteDisconnected):
        post(fake)
    assert fake.accepted == []
    assert [(r.fault, r.http_status, r.status) for r in fake.requests] == [
        (Fault.DROP_UNSENT, None, "")
    ] * 2


def test_drop_sent_records_the_sms_but_the_answer_is_lost(fake: FakeRonglian) -> None:
    fake.script(Fault.DROP_SENT, Fault.DROP_SENT)
    assert raw_exchange(fake) == b""
    with pytest.raises(http.client.RemoteDisconnected):
        post(fake, body(reqId="lost1"))
    assert len(fake.accepted) == 2
    # a retry with the same reqId is deduplicated by the provider
    assert status_of(post(fake, body(reqId="lost1"))) == "160054"
    assert len(fake.accepted) == 2


def test_retry_after_drop_unsent_with_same_req_id_is_accepted(fake: FakeRonglian) -> None:
    fake.script(Fault.DROP_UNSENT)
    with pytest.raises(http.client.RemoteDisconnected):
        post(fake, body(reqId="retry1"))
    assert status_of(post(fake, body(reqId="retry1"))) == "000000"
    assert len(fake.accepted) == 1


def test_slow_sent_times_out_the_client_but_is_recorded(fake: FakeRonglian) -> None:
    fake.script(Fault.SLOW_SENT)
    pool = urllib3.PoolManager(timeout=urllib3.Timeout(connect=1.0, read=0.2), retries=False)
    stamp = ts()
    started = time.monotonic()
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        pool.request(
            "POST",
            f"{fake.base_url}{PATH}?sig={sig(stamp)}",
            body=json.dumps(body()).encode(),
            headers={"Authorization": auth(stamp), "Content-Type": "application/json"},
        )
    pool.clear()
    assert time.monotonic() - started < 0.45
    assert len(fake.accepted) == 1
    assert fake.requests[-1].fault is Fault.SLOW_SENT


def test_slow_sent_answers_ok_to_a_patient_client(fake: FakeRonglian) -> None:
    fake.slow_seconds = 0.2
    fake.script(Fault.SLOW_SENT)
    started = time.monotonic()
    assert status_of(post(fake)) == "000000"
    assert time.monotonic() - started >= 0.2


def test_faults_only_apply_to_validated_requests(fake: FakeRonglian) -> None:
    fake.script(Fault.DROP_UNSENT)
    assert status_of(post(fake, signature="WRONG")) == "111109"
    assert status_of(post(fake, body(to="123"))) == "160042"
    with pytest.raises(http.client.RemoteDisconnected):
        post(fake)
    assert status_of(post(fake)) == "000000"


def test_script_replaces_pending_script(fake: FakeRonglian) -> None:
    fake.script(Fault.HTTP_500, Fault.HTTP_500)
    fake.script(Fault.GARBAGE)
    assert post(fake)[0] == 200
    assert status_of(post(fake)) == "000000"


def test_invalid_fault_specs_are_refused(fake: FakeRonglian) -> None:
    with pytest.raises(ValueError, match="000000"):
        fake.script((Fault.STATUS, "000000"))
    with pytest.raises(ValueError, match="rate"):
        fake.chaos(1.5, [Fault.HTTP_500])
    with pytest.raises(ValueError, match="at least one"):
        fake.chaos(0.5, [])


def chaos_run(fake: FakeRonglian, seed: int) -> list[str]:
    fake.reset()
    fake.chaos(0.5, [(Fault.STATUS, "160050"), Fault.HTTP_500, Fault.GARBAGE], seed=seed)
    outcomes = []
    for _ in range(30):
        http_status, raw = post(fake)
        outcomes.append(
            f"{http_status}:{raw[:40]!r}"
            if http_status != 200
            else raw.decode(errors="replace")[:30]
        )
    return outcomes


def test_chaos_is_seeded_and_counts_only_successes(fake: FakeRonglian) -> None:
    first = chaos_run(fake, seed=7)
    ok = sum(1 for r in fake.requests if r.status == "000000")
    assert len(fake.accepted) == ok
    assert 5 < ok < 25  # rate 0.5 over 30 requests
    assert {r.fault for r in fake.requests} == {
        Fault.OK,
        Fault.STATUS,
        Fault.HTTP_500,
        Fault.GARBAGE,
    }
    assert chaos_run(fake, seed=7) == first
    fake.chaos(0, [])
    assert all(status_of(post(fake)) == "000000" for _ in range(5))


def test_policy_picks_faults_from_the_body(fake: FakeRonglian) -> None:
    def policy(parsed: dict[str, object]) -> tuple[Fault, str] | None:
        return (Fault.STATUS, "160050") if parsed["to"] == "13900139000" else None

    fake.set_policy(policy)
    assert status_of(post(fake, body(to="13900139000"))) == "160050"
    assert status_of(post(fake)) == "000000"
    fake.set_policy(None)
    assert status_of(post(fake, body(to="13900139000"))) == "000000"


# -- transport, timing, lifecycle -----------------------------------------------------------


def test_latency_delays_every_answer(fake: FakeRonglian) -> None:
    fake.latency = 0.15
    started = time.monotonic()
    assert status_of(post(fake, signature="WRONG")) == "111109"
    assert post(fake, path="/x")[0] == 404
    assert time.monotonic() - started >= 0.3


def test_keep_alive_reuses_one_connection_even_after_errors(fake: FakeRonglian) -> None:
    host, port = addr(fake)
    with urllib3.HTTPConnectionPool(host, port, maxsize=1, block=True, retries=False) as pool:
        for _ in range(3):
            stamp = ts()
            pool.request(
                "POST",
                f"{PATH}?sig={sig(stamp)}",
                body=json.dumps(body()).encode(),
                headers={"Authorization": auth(stamp)},
            )
        pool.request("POST", "/nope", body=b"{}")
        assert pool.num_connections == 1
    assert len(fake.accepted) == 3


def test_200_concurrent_keep_alive_connections(fake: FakeRonglian) -> None:
    barrier = threading.Barrier(200)
    errors: list[BaseException] = []

    def client(i: int) -> None:
        conn = http.client.HTTPConnection(*addr(fake), timeout=10)
        try:
            conn.connect()
            barrier.wait()
            for j in range(2):
                stamp = ts()
                payload = json.dumps(body(to=f"139{i:08d}", datas=[f"{i:04d}{j:02d}"]))
                conn.request(
                    "POST",
                    f"{PATH}?sig={sig(stamp)}",
                    body=payload,
                    headers={"Authorization": auth(stamp)},
                )
                resp = conn.getresponse()
                assert json.loads(resp.read())["statusCode"] == "000000"
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)
            barrier.abort()
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    accepted = fake.wait_for(400, timeout=1)
    assert len({s.sid for s in accepted}) == 400
    assert fake.last_code("+8613900000199") == "019901"


def test_wait_for(fake: FakeRonglian) -> None:
    with pytest.raises(TimeoutError):
        fake.wait_for(1, timeout=0.05)
    timer = threading.Timer(0.1, post, args=(fake,))
    timer.start()
    assert len(fake.wait_for(1, timeout=3)) == 1
    timer.join()


def test_reset_forgets_everything(fake: FakeRonglian) -> None:
    assert status_of(post(fake, body(reqId="x1"))) == "000000"
    fake.script(Fault.HTTP_500)
    fake.chaos(1.0, [Fault.GARBAGE])
    fake.reset()
    assert fake.accepted == []
    assert fake.requests == []
    assert status_of(post(fake, body(reqId="x1"))) == "000000"


def test_sms_to_rejects_non_mobile_numbers(fake: FakeRonglian) -> None:
    with pytest.raises(ValueError, match="mobile"):
        fake.sms_to("12345")


def test_stop_is_quick_with_idle_keep_alive_and_slow_requests() -> None:
    fake = FakeRonglian(slow_seconds=30).start()
    with pytest.raises(RuntimeError):
        fake.start()
    idle = socket.create_connection(addr(fake))
    fake.script(Fault.SLOW_SENT)
    stamp = ts()
    slow = http.client.HTTPConnection(*addr(fake), timeout=5)
    slow.request(
        "POST",
        f"{PATH}?sig={sig(stamp)}",
        body=json.dumps(body()),
        headers={"Authorization": auth(stamp)},
    )
    fake.wait_for(1, timeout=2)
    started = time.monotonic()
    fake.stop()
    assert time.monotonic() - started < 1.0
    with pytest.raises(http.client.RemoteDisconnected):
        slow.getresponse()
    slow.close()
    assert idle.recv(1) == b""
    idle.close()
    with pytest.raises(RuntimeError):
        _ = fake.base_url
    fake.stop()  # idempotent


def test_main_serves_until_interrupted() -> None:
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.ronglian",
            "--port",
            "0",
            "--latency",
            "0.01",
            "--acc-id",
            ACC,
            "--acc-token",
            TOKEN,
            "--app-id",
            APP,
        ],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert match, line
        host_port = ("127.0.0.1", int(match.group(1)))
        stamp = ts()
        conn = http.client.HTTPConnection(*host_port, timeout=3)
        try:
            conn.request(
                "POST",
                f"{PATH}?sig={sig(stamp)}",
                body=json.dumps(body()),
                headers={"Authorization": auth(stamp)},
            )
            assert json.loads(conn.getresponse().read())["statusCode"] == "000000"
        finally:
            conn.close()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
