"""A verify costs the client that asks, never the phone it names.

Clients are told apart by X-Forwarded-For behind one trusted proxy. A verify for a phone
without a live code changes nothing of the phone's and stores nothing per phone, through the
native route and the Twilio-compatible one alike; the asking client's failures are capped.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import redis
import requests

from tests.conftest import ADMIN_KEY
from tests.fakes.ronglian import FakeRonglian
from tests.helpers import fresh_phone

CLIENT_CAP = 100  # VERIFY_IP_HOURLY_LIMIT's default
SERVICE = "VA" + "0123456789abcdef" * 2
SERVER_ENV = {
    "DELIVERY_BACKEND": "inline",
    "TRUSTED_PROXY_COUNT": "1",
    "VERIFY_IP_HOURLY_LIMIT": str(CLIENT_CAP),
    "VERIFY_SERVICE_SIDS": SERVICE,
}


def verify(api: str, phone: str, code: str, client: str) -> requests.Response:
    body = {"phone": phone, "code": code}
    headers = {"X-Forwarded-For": client}
    return requests.post(f"{api}/codes/verify", json=body, headers=headers, timeout=10)


def delivered(fake: FakeRonglian, phone: str) -> str:
    """The code of the SMS the fake got for `phone`, waiting for it."""
    deadline = time.monotonic() + 10
    while (code := fake.last_code(phone)) is None:
        assert time.monotonic() < deadline, f"no SMS reached {phone}"
        time.sleep(0.02)
    return code


def sent_code(api: str, phone: str, client: str, fake: FakeRonglian) -> str:
    """Ask for a code from `client` and read it from the fake's SMS."""
    headers = {"X-Forwarded-For": client}
    answer = requests.post(f"{api}/codes", json={"phone": phone}, headers=headers, timeout=10)
    assert answer.status_code == 202, answer.text
    return delivered(fake, phone)


def test_25_verifies_of_a_phone_without_a_code_do_not_lock_it(
    api: str, redis_client: redis.Redis, fake_ronglian: FakeRonglian
) -> None:
    # given: a stranger's 25 verifies of a number that has no code
    phone = fresh_phone()
    answers = [verify(api, phone, "000000", "203.0.113.9") for _ in range(25)]
    # when: the number's owner asks for a code and types it, from another network
    code = sent_code(api, phone, "198.51.100.4", fake_ronglian)
    answer = verify(api, phone, code, "198.51.100.4")
    # then
    assert answer.status_code == 200, answer.text
    assert {a.json()["error"] for a in answers} == {"no_active_code"}


def test_1000_verifies_of_1000_numbers_without_a_code_store_nothing_per_number(
    api: str, redis_client: redis.Redis
) -> None:
    # given: 1,000 numbers, asked for by 20 clients (50 each, below their cap)
    phones = {fresh_phone() for _ in range(1000)}
    while len(phones) < 1000:
        phones.add(fresh_phone())
    before = redis_client.dbsize()

    def ask(job: tuple[int, str]) -> str:
        n, phone = job
        return str(verify(api, phone, "123456", f"192.0.2.{n % 20}").json()["error"])

    # when
    with ThreadPoolExecutor(max_workers=8) as pool:
        errors = set(pool.map(ask, enumerate(sorted(phones))))
    # then: each answered no_active_code, and Redis holds a counter per client, not per number
    assert errors == {"no_active_code"}
    assert redis_client.dbsize() - before < 50


def test_a_client_past_its_failures_is_rate_limited_by_its_ipv6_64(
    api: str, redis_client: redis.Redis, fake_ronglian: FakeRonglian
) -> None:
    # given: a live code, and a client that has failed CLIENT_CAP times from one /64 (its
    # host bits rotating)
    phone = fresh_phone()
    code = sent_code(api, phone, "198.51.100.4", fake_ronglian)
    for n in range(CLIENT_CAP):
        answer = verify(api, fresh_phone(), "000000", f"2001:db8:7:1::{n + 1:x}")
        assert answer.json()["error"] == "no_active_code"
    # when / then: that /64 is refused any verify, even of a right code, with the wait
    refused = verify(api, phone, code, "2001:db8:7:1::ffff")
    assert refused.status_code == 429, refused.text
    body = refused.json()
    assert body["error"] == "rate_limited"
    assert 3500 <= body["retry_after"] <= 3600
    assert refused.headers["Retry-After"] == str(body["retry_after"])
    # and another /64 verifies that very code
    assert verify(api, phone, code, "2001:db8:7:2::1").status_code == 200


def test_wrong_codes_against_a_live_code_still_burn_it(
    api: str, redis_client: redis.Redis, fake_ronglian: FakeRonglian
) -> None:
    phone = fresh_phone()
    code = sent_code(api, phone, "198.51.100.4", fake_ronglian)
    wrong = str((int(code) + 1) % 10**6).zfill(6)
    errors = [verify(api, phone, wrong, "203.0.113.77").json()["error"] for _ in range(5)]
    assert errors == ["invalid_code"] * 4 + ["too_many_attempts"]
    assert verify(api, phone, code, "198.51.100.4").json()["error"] == "no_active_code"


def test_twilio_checks_without_a_verification_store_nothing_and_lock_nothing(
    api: str, redis_client: redis.Redis, fake_ronglian: FakeRonglian
) -> None:
    check = f"{api}/v2/Services/{SERVICE}/VerificationCheck"
    phone = f"+86{fresh_phone()}"
    # given: checks of 200 numbers without a verification, and 25 native verifies of one
    before = redis_client.dbsize()
    for _ in range(200):
        form = {"To": f"+86{fresh_phone()}", "Code": "123456"}
        answer = requests.post(check, data=form, auth=ADMIN_KEY, timeout=10)
        assert answer.status_code == 404, answer.text
    assert redis_client.dbsize() == before
    for _ in range(25):
        assert verify(api, phone, "000000", "203.0.113.9").status_code == 400
    # when: that number's verification starts and its right code is checked
    start = f"{api}/v2/Services/{SERVICE}/Verifications"
    form = {"To": phone, "Channel": "sms"}
    assert requests.post(start, data=form, auth=ADMIN_KEY, timeout=10).status_code == 201
    code = delivered(fake_ronglian, phone)
    answer = requests.post(check, data={"To": phone, "Code": code}, auth=ADMIN_KEY, timeout=10)
    # then
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "approved"
