"""Deliverer over fakes: at most one provider call per message, only while useful."""

from __future__ import annotations

import time

import pytest

from smscode.domain.outcomes import Failed, MaybeSent, NotSent, Outcome, Result, Sent
from smscode.service_layer.deliver import Deliverer
from tests.unit.conftest import E164, PHONE, TTL, World


def test_a_fresh_message_is_sent_once_and_recorded(world: World) -> None:
    message = world.queued()
    assert world.deliverer.deliver(message) is Outcome.SENT
    [sms] = world.provider.sent
    assert (sms.to, sms.code, sms.minutes, sms.key) == (
        E164, world.code_of(message), TTL // 60, message.message_id,
    )  # fmt: skip
    assert world.sender.status(message.request_id)["state"] == "sent"
    assert world.sender.status(message.request_id)["provider"] == "fake"
    assert world.store.lease(message.message_id) is None  # released
    assert world.metrics.counts == {("send_accepted", ""): 1, ("delivered", "sent"): 1}


def test_a_redelivered_sent_message_is_acknowledged_without_a_second_sms(world: World) -> None:
    message = world.queued()
    world.deliverer.deliver(message)
    assert world.deliverer.deliver(message) is Outcome.SENT
    assert len(world.provider.sent) == 1


def test_an_expired_message_is_not_sent_and_reads_expired(world: World) -> None:
    message = world.queued()
    world.clock.advance(TTL)
    assert world.deliverer.deliver(message) is Outcome.EXPIRED
    assert world.provider.sent == []
    # the request record expired with the code: the state is written again, phone masked
    assert world.sender.status(message.request_id)["state"] == "expired"
    assert world.sender.status(message.request_id)["phone"] == "+86138****8000"
    assert world.metrics.counts["delivered", "expired"] == 1


def test_an_expired_message_is_dropped_even_while_the_store_is_down(world: World) -> None:
    message = world.queued()
    world.clock.advance(TTL + 1)
    world.store.down = True
    assert world.deliverer.deliver(message) is Outcome.EXPIRED
    assert world.provider.sent == []


def test_a_lease_held_by_another_worker_is_a_retry_without_a_call(world: World) -> None:
    message = world.queued()
    assert world.store.claim(
        phone=E164, request_id=message.request_id, message_id=message.message_id,
        token="other", lease_ms=10_000, providers=("fake",), pin_to=None, pin_ttl=60,
    ) == "go"  # fmt: skip
    assert world.deliverer.deliver(message) is Outcome.RETRY
    assert world.provider.sent == []
    assert world.store.lease(message.message_id) == "other"  # not ours to release


def test_a_verified_code_is_skipped(world: World) -> None:
    message = world.queued()
    world.verifier.verify(PHONE, world.code_of(message))
    assert world.deliverer.deliver(message) is Outcome.SKIPPED
    assert world.provider.sent == []
    assert world.sender.status(message.request_id)["state"] == "skipped"


def test_a_sealed_code_that_does_not_open_fails_for_good(world: World) -> None:
    message = world.queued().model_copy(update={"sealed_code": "bm90LXNlYWxlZA=="})
    assert world.deliverer.deliver(message) is Outcome.FAILED
    assert world.provider.sent == []
    assert world.sender.status(message.request_id)["state"] == "failed"
    assert world.store.lease(message.message_id) is None


@pytest.mark.parametrize(
    ("result", "outcome", "state"),
    [
        (Sent(sid="s1"), Outcome.SENT, "sent"),
        (Sent(sid="s1", repeat=True), Outcome.SENT, "sent"),
        (Failed(reason="bad number", status_code="160042"), Outcome.FAILED, "failed"),
        (NotSent(reason="refused"), Outcome.RETRY, "queued"),
        (MaybeSent(reason="read timeout"), Outcome.RETRY, "queued"),
    ],
)
def test_each_provider_result_maps_to_its_outcome_and_state(
    world: World, result: Result, outcome: Outcome, state: str
) -> None:
    world.provider.script.append(result)
    message = world.queued()
    assert world.deliverer.deliver(message) is outcome
    assert world.sender.status(message.request_id)["state"] == state
    assert world.store.lease(message.message_id) is None  # the next attempt is not blocked
    assert world.metrics.counts["delivered", outcome.value] == 1


def test_a_retry_after_not_sent_sends_again_with_the_same_key(world: World) -> None:
    world.provider.script.append(NotSent(reason="refused"))
    message = world.queued()
    assert world.deliverer.deliver(message) is Outcome.RETRY
    assert world.deliverer.deliver(message) is Outcome.SENT
    assert [sms.key for sms in world.provider.sent] == [message.message_id] * 2


def test_a_permanent_failure_is_counted_by_its_status_code(world: World) -> None:
    world.provider.script.append(Failed(reason="balance", status_code="111142"))
    message = world.queued()
    world.deliverer.deliver(message)
    assert world.metrics.counts["permanent_failure", "111142"] == 1
    assert world.deliverer.deliver(message) is Outcome.FAILED  # final: never retried
    assert len(world.provider.sent) == 1


def test_a_message_for_another_purpose_is_delivered_and_skipped_once_verified(
    world: World,
) -> None:
    world.sender.issue(PHONE, "127.0.0.1", purpose="reset-password")
    [first] = world.publisher.messages
    assert world.deliverer.deliver(first) is Outcome.SENT
    world.clock.advance(60)
    world.sender.issue(PHONE, "127.0.0.1", purpose="reset-password")
    second = world.publisher.messages[-1]
    world.verifier.verify(PHONE, world.code_of(second), purpose="reset-password")
    assert world.deliverer.deliver(second) is Outcome.SKIPPED
    assert len(world.provider.sent) == 1


def test_the_provider_call_gets_the_lease_token_and_a_deadline_inside_the_lease(
    world: World,
) -> None:
    message = world.queued()
    before = time.monotonic()
    world.deliverer.deliver(message)
    [lease] = world.provider.leases
    assert lease.token  # the token claim took the lease with: it fences the attempt's writes
    assert before < lease.deadline <= time.monotonic() + 1  # budget_seconds=1, lease 2 s


def test_a_budget_that_does_not_end_before_the_lease_is_refused(world: World) -> None:
    with pytest.raises(ValueError, match="strictly before the lease"):
        Deliverer(
            world.store, world.provider, world.sealer, world.metrics,
            lease_seconds=2, budget_seconds=2, providers=("fake",), pin_at_claim=True,
        )  # fmt: skip
