"""Brute force: guesses are capped per code and per phone per day, whatever the resends.

The per-client cap on failed verifies (VERIFY_IP_HOURLY_LIMIT) is lifted here, as every
request comes from 127.0.0.1 (tests/conftest.py); test_verify_abuse.py covers it.
"""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.fakes.ronglian import FakeRonglian
from tests.helpers import fresh_phone

GUESSES = 10_000
PER_CODE = 5  # MAX_VERIFY_ATTEMPTS default
DAILY_FAILURES = 20  # VERIFY_FAILURES_DAILY_LIMIT default
LOCKED = "Too many wrong codes for this phone today; try again tomorrow."
# No resend interval, no practical daily send cap and no pumping rule (hundreds of unverified
# sends to one number block is exactly what it refuses): only the verify caps stand.
SERVER_ENV = {
    "DELIVERY_BACKEND": "inline",
    "RESEND_INTERVAL_SECONDS": "0",
    "PHONE_DAILY_LIMIT": "100000",
    "PUMPING_MIN_CONVERSION": "0",
}


def _new_code(session: requests.Session, api: str, fake: FakeRonglian, phone: str) -> str:
    """Resend and wait until the fake Ronglian got the new code."""
    before = len(fake.sms_to(phone))
    assert session.post(f"{api}/codes", json={"phone": phone}, timeout=10).status_code == 202
    for _ in range(400):
        sent = fake.sms_to(phone)
        if len(sent) > before:
            return sent[-1].datas[0]
        time.sleep(0.01)
    raise AssertionError("the code never reached the fake Ronglian")


def _guess(session: requests.Session, api: str, phone: str, code: str) -> str:
    """One verify; answers the outcome: error code, or 'locked' when the phone is locked."""
    answer = session.post(
        f"{api}/codes/verify", json={"phone": phone, "code": code}, timeout=10
    ).json()
    if answer.get("message") == LOCKED:
        return "locked"
    return str(answer.get("error", answer["status"]))


def _wrong(code: str) -> str:
    return str((int(code) + 1) % 10 ** len(code)).zfill(len(code))


@pytest.mark.slow
def test_10000_guesses_over_resends_stop_at_the_daily_failure_cap(
    api: str, fake_ronglian: FakeRonglian
) -> None:
    # given: an attacker who asks for a fresh code after every PER_CODE wrong guesses
    phone = fresh_phone()
    session = requests.Session()
    outcomes: Counter[str] = Counter()
    # when: the first rounds, sequentially, each guess known to be wrong
    while outcomes["locked"] == 0:
        code = _new_code(session, api, fake_ronglian, phone)
        for _ in range(PER_CODE):
            outcomes[_guess(session, api, phone, _wrong(code))] += 1
    # ... and the rest of the 10,000 guesses, with resends, from 8 clients at once: once
    # the phone is locked no guess is compared at all, right or wrong
    rounds = (GUESSES - sum(outcomes.values())) // PER_CODE

    def attack(round_: int) -> Counter[str]:
        own = requests.Session()
        assert own.post(f"{api}/codes", json={"phone": phone}, timeout=10).status_code == 202
        return Counter(
            _guess(own, api, phone, f"{(round_ * PER_CODE + n) % 10**6:06d}")
            for n in range(PER_CODE)
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        for counted in pool.map(attack, range(rounds)):
            outcomes.update(counted)
    # then: every guess past the cap was refused unseen, and none succeeded
    evaluated = sum(count for outcome, count in outcomes.items() if outcome != "locked")
    assert sum(outcomes.values()) >= GUESSES - PER_CODE
    assert evaluated == DAILY_FAILURES
    assert outcomes["success"] == 0
    assert outcomes["invalid_code"] == DAILY_FAILURES * (PER_CODE - 1) // PER_CODE
    assert outcomes["too_many_attempts"] == DAILY_FAILURES // PER_CODE
    # and even the right code no longer opens the phone today
    code = _new_code(session, api, fake_ronglian, phone)
    assert _guess(session, api, phone, code) == "locked"


def test_verify_without_a_code_answers_like_a_wrong_code_and_costs_the_phone_nothing(
    api: str, fake_ronglian: FakeRonglian
) -> None:
    # given
    session = requests.Session()
    phone = fresh_phone()
    assert session.post(f"{api}/codes", json={"phone": phone}, timeout=10).status_code == 202
    wrong = session.post(f"{api}/codes/verify", json={"phone": phone, "code": "x"}, timeout=10)
    idle = fresh_phone()
    # when
    none = session.post(f"{api}/codes/verify", json={"phone": idle, "code": "x"}, timeout=10)
    # then: same status, same content type, same body shape (bar the attempts counter)
    assert none.status_code == wrong.status_code == 400
    assert none.headers["Content-Type"] == wrong.headers["Content-Type"]
    assert none.json()["error"] == "no_active_code"
    assert set(none.json()) | {"attempts_left"} == set(wrong.json())
    # and probing a phone with no code, past its daily failure cap, never locks it: only
    # wrong codes against its live codes count there (the prober's own cap is elsewhere)
    outcomes = Counter(_guess(session, api, idle, "123456") for _ in range(DAILY_FAILURES + 5))
    assert outcomes == {"no_active_code": DAILY_FAILURES + 5}
    code = _new_code(session, api, fake_ronglian, idle)
    assert _guess(session, api, idle, code) == "success"
