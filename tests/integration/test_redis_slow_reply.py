"""A Redis reply slower than the client's read timeout (1 s): no script runs twice.

The server talks to Redis through a TCP proxy that holds one reply back 1.5 s. The script
behind that reply ran; the client gives up on it, and must neither run it again (a cap
counted twice, a right code already consumed answering no_active_code) nor lose the code
for the asker it told to try again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import redis
import requests

from tests.conftest import ADMIN_KEY, stack_env
from tests.fakes.ronglian import FakeRonglian
from tests.helpers import Server, fresh_phone
from tests.tcp_proxy import HoldingProxy

HOLD = 1.5  # seconds, past the client's 1 s read timeout
SERVICE = "VA" + "0123456789abcdef" * 2


@pytest.fixture(scope="module")
def proxy(redis_url: str) -> Iterator[HoldingProxy]:
    """The proxy in front of the run's Redis."""
    where = urlsplit(redis_url)
    with HoldingProxy(where.hostname or "127.0.0.1", where.port or 6379) as running:
        yield running


@pytest.fixture(scope="module")
def slow_api(
    proxy: HoldingProxy, redis_url: str, fake_ronglian_session: FakeRonglian
) -> Iterator[str]:
    """The HTTP function on Redis through the proxy, delivering inline, no resend interval
    (so a send run twice would be accepted twice)."""
    through = urlsplit(redis_url)._replace(netloc=f"127.0.0.1:{proxy.port}").geturl()
    env = stack_env(
        through, fake_ronglian_session, DELIVERY_BACKEND="inline", RESEND_INTERVAL_SECONDS="0",
        VERIFY_SERVICE_SIDS=SERVICE,
    )  # fmt: skip
    server = Server(env).start()
    # Redis learns each script on its first call (a NOSCRIPT reply, then the script): one
    # call of each first, so a held reply is always a script's own
    phone = f"+86{fresh_phone()}"
    requests.post(f"{server.url}/codes", json={"phone": phone}, timeout=10)
    requests.post(f"{server.url}/codes/verify", json={"phone": phone, "code": "0"}, timeout=10)
    form = {"To": phone, "Code": "0000"}
    check = f"{server.url}/v2/Services/{SERVICE}/VerificationCheck"
    requests.post(check, data=form, auth=ADMIN_KEY, timeout=10)
    yield server.url
    server.stop()


def wait_sent(client: redis.Redis, fake: FakeRonglian, phone: str) -> str:
    """The code the fake got for `phone`, once its delivery is recorded (no Redis call of
    that delivery is left to catch the hold)."""
    deadline = time.monotonic() + 10
    while True:
        code = fake.last_code(phone)
        states = [client.hget(key, "state") for key in client.scan_iter("{smscode}:req:*")]
        if code is not None and "queued" not in states:
            return code
        assert time.monotonic() < deadline, "the code was never delivered"
        time.sleep(0.02)


def test_a_send_whose_reply_is_held_counts_every_cap_once(
    proxy: HoldingProxy, slow_api: str, redis_client: redis.Redis, fake_ronglian: FakeRonglian
) -> None:
    # given
    phone = fresh_phone()
    e164 = f"+86{phone}"
    proxy.hold_next(e164.encode(), HOLD)
    # when
    answer = requests.post(f"{slow_api}/codes", json={"phone": phone}, timeout=10)
    # then: accepted, or 503 (the script ran, its reply was lost), never counted twice
    assert proxy.held.wait(5)
    assert answer.status_code in (202, 503), answer.text
    if answer.status_code == 503:
        assert answer.json()["error"] == "unavailable"
    hour = int(time.time()) // 3600
    counters = [
        f"{{smscode}}:daily:{e164}", "{smscode}:ip:127.0.0.1", f"{{smscode}}:prefix:{phone[:7]}",
        "{smscode}:global",
    ]  # fmt: skip
    assert [redis_client.get(key) for key in counters] == ["1"] * 4
    assert redis_client.hget(f"{{smscode}}:pump:{phone[:7]}", "S") == "1"
    assert redis_client.hget(f"{{smscode}}:stats:{hour}", "sends") == "1"


def test_a_right_code_whose_reply_is_held_verifies(
    proxy: HoldingProxy, slow_api: str, redis_client: redis.Redis, fake_ronglian: FakeRonglian
) -> None:
    # given: a code delivered, then the verify's reply held
    phone = fresh_phone()
    assert requests.post(f"{slow_api}/codes", json={"phone": phone}, timeout=10).status_code == 202
    code = wait_sent(redis_client, fake_ronglian, phone)
    proxy.hold_next(f"+86{phone}".encode(), HOLD)
    body = {"phone": phone, "code": code}
    # when
    answer = requests.post(f"{slow_api}/codes/verify", json=body, timeout=10)
    # then: a success, or a 503 after which the same code verifies; never no_active_code
    assert proxy.held.wait(5)
    assert answer.status_code in (200, 503), answer.text
    if answer.status_code == 503:
        assert answer.json()["error"] == "unavailable"
        answer = requests.post(f"{slow_api}/codes/verify", json=body, timeout=10)
    assert answer.status_code == 200, answer.text
    # and only once: counted once for its block, and the code is spent now
    hour = int(time.time()) // 3600
    assert redis_client.hget(f"{{smscode}}:pump:{phone[:7]}", "V") == "1"
    assert redis_client.hget(f"{{smscode}}:stats:{hour}", "verified") == "1"
    again = requests.post(f"{slow_api}/codes/verify", json=body, timeout=10)
    assert again.json()["error"] == "no_active_code"


def test_a_twilio_approval_whose_reply_is_held_approves(
    proxy: HoldingProxy, slow_api: str, redis_client: redis.Redis, fake_ronglian: FakeRonglian
) -> None:
    # given: a verification whose code was delivered, then the check's reply held
    phone = f"+86{fresh_phone()}"
    base = f"{slow_api}/v2/Services/{SERVICE}"
    started = requests.post(
        f"{base}/Verifications", data={"To": phone, "Channel": "sms"}, auth=ADMIN_KEY, timeout=10
    )
    assert started.status_code == 201, started.text
    code = wait_sent(redis_client, fake_ronglian, phone)
    proxy.hold_next(phone.encode(), HOLD)
    form = {"To": phone, "Code": code}
    # when
    answer = requests.post(f"{base}/VerificationCheck", data=form, auth=ADMIN_KEY, timeout=10)
    # then: approved, or Twilio's 503 after which the same code approves; never a 404
    assert proxy.held.wait(5)
    assert answer.status_code in (200, 503), answer.text
    if answer.status_code == 503:
        assert answer.json()["code"] == 20503
        answer = requests.post(f"{base}/VerificationCheck", data=form, auth=ADMIN_KEY, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "approved"
