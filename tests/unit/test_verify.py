"""Verifier over fakes: each store outcome becomes its contract error, and is counted."""

from __future__ import annotations

from dataclasses import replace

import pytest

from smscode.domain.errors import (
    InvalidCode,
    NoActiveCode,
    RateLimited,
    TooManyAttempts,
    Unavailable,
)
from tests.unit.conftest import PHONE, POLICY, TTL, World


def wrong(code: str) -> str:
    return str((int(code) + 1) % 10**6).zfill(6)


def test_the_right_code_is_accepted_once(world: World) -> None:
    code = world.code_of(world.queued())
    world.verifier.verify(PHONE, code)
    with pytest.raises(NoActiveCode):
        world.verifier.verify(PHONE, code)
    assert world.metrics.counts["verified", "ok"] == 1
    assert world.metrics.counts["verified", "none"] == 1


def test_a_spelling_of_the_phone_finds_the_same_code(world: World) -> None:
    code = world.code_of(world.queued("138 0013 8000"))
    world.verifier.verify("+86 138-0013-8000", code)


def test_a_wrong_code_says_how_many_tries_are_left(world: World) -> None:
    code = world.code_of(world.queued())
    with pytest.raises(InvalidCode) as refused:
        world.verifier.verify(PHONE, wrong(code))
    assert refused.value.body() == {
        "status": "error", "error": "invalid_code", "message": "The code is not correct.",
        "attempts_left": POLICY.max_verify_attempts - 1,
    }  # fmt: skip
    world.verifier.verify(PHONE, code)  # the code still works after a wrong try


def test_the_last_wrong_try_burns_the_code(world: World) -> None:
    code = world.code_of(world.queued())
    for _ in range(POLICY.max_verify_attempts - 1):
        with pytest.raises(InvalidCode):
            world.verifier.verify(PHONE, wrong(code))
    with pytest.raises(TooManyAttempts, match="this code no longer works"):
        world.verifier.verify(PHONE, wrong(code))
    with pytest.raises(NoActiveCode):
        world.verifier.verify(PHONE, code)  # burned: even the right code is refused
    assert world.metrics.counts["verified", "burned"] == 1


def test_no_code_is_no_active_code(world: World) -> None:
    with pytest.raises(NoActiveCode) as refused:
        world.verifier.verify(PHONE, "123456")
    assert refused.value.status == 400


def test_an_expired_code_is_no_active_code(world: World) -> None:
    code = world.code_of(world.queued())
    world.clock.advance(TTL)
    with pytest.raises(NoActiveCode):
        world.verifier.verify(PHONE, code)


def test_the_daily_failure_cap_locks_the_phone_even_for_the_right_code(world: World) -> None:
    # given: wrong codes against live codes, resent as each one burns, up to the daily cap
    failures = 0
    while failures < POLICY.verify_failures_daily:
        code = world.code_of(world.queued())
        for _ in range(min(POLICY.max_verify_attempts, POLICY.verify_failures_daily - failures)):
            with pytest.raises((InvalidCode, TooManyAttempts)):
                world.verifier.verify(PHONE, wrong(code))
            failures += 1
        world.clock.advance(60)  # the resend interval
    code = world.code_of(world.queued())
    with pytest.raises(TooManyAttempts, match="today") as refused:
        world.verifier.verify(PHONE, code)
    assert refused.value.status == 429
    assert world.metrics.counts["verified", "locked"] == 1


def test_verifies_without_a_code_leave_the_phone_as_it_was(world: World) -> None:
    # given: far more verifies than the daily cap, for a phone with no code
    for _ in range(POLICY.verify_failures_daily * 5):
        with pytest.raises(NoActiveCode):
            world.verifier.verify(PHONE, "000000", client_ip="203.0.113.9")
    # when its owner asks for a code, from elsewhere
    code = world.code_of(world.queued())
    # then the right code works
    world.verifier.verify(PHONE, code, client_ip="198.51.100.4")


def test_a_client_past_its_hourly_failures_is_rate_limited_and_others_are_not() -> None:
    world = World(replace(POLICY, verify_client_hourly=3))
    code = world.code_of(world.queued())
    for _ in range(3):
        with pytest.raises(NoActiveCode):
            world.verifier.verify("13900139000", "000000", client_ip="203.0.113.9")
    # then: the 4th failure from that client is refused before any code is looked at
    with pytest.raises(RateLimited) as refused:
        world.verifier.verify(PHONE, code, client_ip="203.0.113.9")
    assert refused.value.code == "rate_limited"
    assert refused.value.body()["retry_after"] == 3600
    # and another client verifies the very code
    world.verifier.verify(PHONE, code, client_ip="198.51.100.4")


def test_a_store_that_is_down_is_unavailable(world: World) -> None:
    world.store.down = True
    with pytest.raises(Unavailable):
        world.verifier.verify(PHONE, "123456")
    assert world.metrics.counts == {}


def test_a_code_verifies_only_for_the_purpose_it_was_sent_for(world: World) -> None:
    world.sender.issue(PHONE, "127.0.0.1", purpose="signup")
    [message] = world.publisher.messages
    assert message.purpose == "signup"
    code = world.code_of(message)
    with pytest.raises(NoActiveCode):
        world.verifier.verify(PHONE, code)  # the default purpose: no code is waiting
    assert world.verifier.verify(PHONE, code, purpose="signup").token is None  # no signer set
