"""Sender over fakes: one sealed message per accepted send, a refused queue undone, caps named."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta

import pytest

from smscode.domain import codes
from smscode.domain.errors import InvalidPhone, NotFound, RateLimited, Unavailable
from smscode.domain.policy import Policy
from tests.unit.conftest import E164, PHONE, POLICY, RESEND, TTL, World


def test_an_accepted_send_publishes_one_sealed_message(world: World) -> None:
    # when
    issued = world.sender.issue(PHONE, "127.0.0.1")
    # then: one message, for this request, the code sealed for its message id
    [message] = world.publisher.messages
    assert (issued.request_id, issued.expires_in, issued.resend_after) == (
        message.request_id, TTL, RESEND,
    )  # fmt: skip
    assert message.phone == E164
    assert message.minutes == TTL // 60
    assert message.expires_at - message.created_at == timedelta(seconds=TTL)
    assert message.created_at.timestamp() == world.clock()
    code = world.code_of(message)
    assert len(code) == 6
    assert code not in message.to_json()  # sealed: no broker ever holds it in clear
    # and the store holds the code's HMAC, bound to the phone and this message
    stored = world.store.get(f"code:{E164}")
    assert stored["h"] == codes.hash_code(b"unit-secret-0123456789abcdefghij", E164, code)
    assert stored["mid"] == message.message_id
    assert world.metrics.counts == {("send_accepted", ""): 1}
    assert world.sender.status(issued.request_id) == {
        "request_id": issued.request_id, "state": "queued", "phone": "+86138****8000",
        "provider": None,
    }  # fmt: skip


def test_a_publish_failure_gives_the_slot_back_and_raises_unavailable(world: World) -> None:
    # given a queue that refuses
    world.publisher.failing = True
    # when
    with pytest.raises(Unavailable, match="delivery queue is unavailable"):
        world.sender.issue(PHONE, "127.0.0.1")
    # then: nothing stays issued, nothing is counted, the phone may ask again at once
    assert world.store.get(f"code:{E164}") is None
    assert world.store.get(f"resend:{E164}") is None
    assert world.store.get(f"daily:{E164}") == 0
    assert world.metrics.counts == {}
    world.publisher.failing = False
    world.sender.issue(PHONE, "127.0.0.1")
    assert len(world.publisher.messages) == 1


def test_the_resend_interval_refuses_with_retry_after_and_a_metric(world: World) -> None:
    world.sender.issue(PHONE, "127.0.0.1")
    world.clock.advance(20)
    with pytest.raises(RateLimited) as refused:
        world.sender.issue(PHONE, "127.0.0.1")
    assert refused.value.retry_after == RESEND - 20
    assert refused.value.body()["error"] == "rate_limited"
    assert world.metrics.counts["send_rejected", "resend_interval"] == 1
    assert len(world.publisher.messages) == 1
    # once the interval has passed the phone may ask again
    world.clock.advance(RESEND - 20)
    world.sender.issue(PHONE, "127.0.0.1")
    assert len(world.publisher.messages) == 2


def test_the_phone_daily_cap_names_itself(world: World) -> None:
    for _ in range(POLICY.limits.phone_daily):
        world.sender.issue(PHONE, "127.0.0.1")
        world.clock.advance(RESEND)
    with pytest.raises(RateLimited, match="too many codes today") as refused:
        world.sender.issue(PHONE, "127.0.0.1")
    assert 0 < refused.value.retry_after <= 86400
    assert world.metrics.counts["send_rejected", "phone_daily"] == 1


def test_the_ip_cap_counts_across_phones() -> None:
    world = World(replace(POLICY, limits=replace(POLICY.limits, ip_hourly=2)))
    world.sender.issue("13800138000", "203.0.113.7")
    world.sender.issue("13900139000", "203.0.113.7")
    with pytest.raises(RateLimited, match="from this address"):
        world.sender.issue("13700137000", "203.0.113.7")
    world.sender.issue("13700137000", "203.0.113.8")  # another address is not capped
    assert world.metrics.counts["send_rejected", "ip_hourly"] == 1


def test_a_test_phone_gets_its_fixed_code_without_a_message_or_a_cap(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, "smscode.service"):
        world = World(Policy(**{**vars(POLICY), "test_phones": {E164: "246810"}}))
    assert "TEST_PHONES active: 1 phones get fixed codes" in caplog.text
    issued = [world.sender.issue(PHONE, "127.0.0.1") for _ in range(5)]  # past every cap
    assert world.publisher.messages == []
    assert world.store.get(f"daily:{E164}") is None
    assert world.sender.status(issued[-1].request_id)["state"] == "skipped"
    world.verifier.verify(PHONE, "246810")


@pytest.mark.parametrize("raw", ["12345", "+14155550100", "01012345678"])
def test_a_number_that_is_no_mainland_mobile_is_refused_before_the_store(
    world: World, raw: str
) -> None:
    with pytest.raises(InvalidPhone):
        world.sender.issue(raw, "127.0.0.1")
    assert world.store._keys == {}


def test_a_destination_outside_the_allowed_prefixes_is_refused() -> None:
    world = World(replace(POLICY, allowed_prefixes=("+86139",)))
    with pytest.raises(InvalidPhone, match="cannot be sent to this phone"):
        world.sender.issue(PHONE, "127.0.0.1")
    assert world.publisher.messages == []


@pytest.mark.parametrize("request_id", ["0" * 32, "abc", ""])
def test_status_of_an_unknown_request_is_not_found(world: World, request_id: str) -> None:
    with pytest.raises(NotFound):
        world.sender.status(request_id)


def test_status_after_the_code_expired_is_not_found(world: World) -> None:
    issued = world.sender.issue(PHONE, "127.0.0.1")
    world.clock.advance(TTL)
    with pytest.raises(NotFound):
        world.sender.status(issued.request_id)


def test_a_store_that_is_down_is_unavailable(world: World) -> None:
    world.store.down = True
    with pytest.raises(Unavailable):
        world.sender.issue(PHONE, "127.0.0.1")
    assert world.publisher.messages == []
