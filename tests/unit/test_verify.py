"""Verifier over fakes: each store outcome becomes its contract error, and is counted."""

from __future__ import annotations

import pytest

from smscode.domain.errors import InvalidCode, NoActiveCode, TooManyAttempts, Unavailable
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
    for _ in range(POLICY.verify_failures_daily):
        with pytest.raises(NoActiveCode):
            world.verifier.verify(PHONE, "000000")
    code = world.code_of(world.queued())
    with pytest.raises(TooManyAttempts, match="today") as refused:
        world.verifier.verify(PHONE, code)
    assert refused.value.status == 429
    assert world.metrics.counts["verified", "locked"] == 1


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
