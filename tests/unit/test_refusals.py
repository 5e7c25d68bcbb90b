"""The per-process memory of refused phones: only phone-keyed refusals, never past their key."""

from __future__ import annotations

from smscode.domain.policy import Rejection
from smscode.service_layer.refusals import Refusals


class Clock:
    """A settable monotonic clock."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_resend_refusal_is_answered_from_memory_until_just_before_its_key_expires() -> None:
    clock = Clock()
    refusals = Refusals(clock=clock)
    # given the store said: the resend marker lives for at most 60 more seconds
    refusals.remember("+8613800138000", Rejection("resend_interval", 60))
    # then the next 59 seconds are refused from memory, with the wait counted down
    clock.now += 20
    assert refusals.check("+8613800138000") == Rejection("resend_interval", 39)
    # and from the 59th second on the store decides again (its key lives > 59 s)
    clock.now += 39
    assert refusals.check("+8613800138000") is None


def test_refusals_by_shared_caps_or_of_one_second_are_not_remembered() -> None:
    refusals = Refusals(clock=Clock())
    for reason in ("ip_hourly", "prefix_hourly", "global_minute"):
        refusals.remember("+8613800138000", Rejection(reason, 3600))
    refusals.remember("+8613900139000", Rejection("phone_daily", 1))
    assert refusals.check("+8613800138000") is None
    assert refusals.check("+8613900139000") is None


def test_memory_is_bounded_oldest_first() -> None:
    refusals = Refusals(size=2, clock=Clock())
    for phone in ("+8613800000001", "+8613800000002", "+8613800000003"):
        refusals.remember(phone, Rejection("phone_daily", 600))
    assert refusals.check("+8613800000001") is None
    assert refusals.check("+8613800000003") is not None


def test_a_daily_cap_refusal_is_remembered_a_minute_at_most() -> None:
    # given the store refused a phone for its daily cap, for the next 20 hours
    clock = Clock()
    refusals = Refusals(clock=clock)
    refusals.remember("+8613800138000", Rejection("phone_daily", 72_000))
    assert refusals.check("+8613800138000") == Rejection("phone_daily", 60)
    # then after a minute the store decides again (an operator may have reset the counter)
    clock.now += 60
    assert refusals.check("+8613800138000") is None
