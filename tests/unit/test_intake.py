"""intake.receive: raw payloads in, one outcome each, in order; it never raises."""

from __future__ import annotations

import logging
import threading

import pytest

from smscode.domain.errors import Unavailable
from smscode.domain.messages import DeliveryMessage
from smscode.domain.outcomes import Outcome
from smscode.service_layer.intake import Deliver, receive
from tests.unit.conftest import World


def raising(error: Exception) -> Deliver:
    """A deliverer that raises `error`."""

    def deliver(_: DeliveryMessage) -> Outcome:
        raise error

    return deliver


@pytest.mark.parametrize(
    "payload", [b"", b"not json", b"{}", b'{"version": 2}', b"[]", b"\xff\xfe"]
)
def test_a_malformed_payload_is_malformed_and_logged_without_its_content(
    payload: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, "smscode.intake"):
        assert receive([payload], raising(AssertionError("reached the deliverer"))) == [
            Outcome.MALFORMED
        ]
    assert "malformed delivery message" in caplog.text


def test_a_sealed_code_never_reaches_the_log(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    message = world.queued()
    broken = message.to_json().replace('"minutes":5', '"minutes":0')
    with caplog.at_level(logging.DEBUG):
        assert receive([broken], world.deliverer.deliver) == [Outcome.MALFORMED]
    assert message.sealed_code not in caplog.text


def test_an_unavailable_store_is_a_retry(world: World) -> None:
    payload = world.queued().to_json()
    world.store.down = True
    assert receive([payload], world.deliverer.deliver) == [Outcome.RETRY]


def test_a_crash_is_a_retry_logged_without_a_traceback(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, "smscode.intake"):
        assert receive([world.queued().to_json()], raising(KeyError("bug"))) == [Outcome.RETRY]
    assert "delivery crashed: KeyError" in caplog.text
    assert all(record.exc_info is None for record in caplog.records)


def test_several_payloads_get_their_outcomes_in_order(world: World) -> None:
    fine = [world.queued(phone).to_json() for phone in ("13800138000", "13900139000")]
    payloads = [fine[0], "garbage", fine[1]]
    assert receive(payloads, world.deliverer.deliver) == [
        Outcome.SENT, Outcome.MALFORMED, Outcome.SENT,
    ]  # fmt: skip
    assert sorted(sms.to for sms in world.provider.sent) == ["+8613800138000", "+8613900139000"]


def test_a_batch_runs_its_deliveries_at_once(world: World) -> None:
    # two deliveries that each wait for the other only finish if they overlap
    barrier = threading.Barrier(2, timeout=5)

    def deliver(_: DeliveryMessage) -> Outcome:
        barrier.wait()
        return Outcome.SENT

    payloads = [world.queued(p).to_json() for p in ("13800138000", "13900139000")]
    assert receive(payloads, deliver) == [Outcome.SENT, Outcome.SENT]


def test_no_payload_no_outcome() -> None:
    assert receive([], lambda _: Outcome.SENT) == []


def test_unavailable_is_caught_from_any_deliverer(world: World) -> None:
    assert receive([world.queued().to_json()], raising(Unavailable("down"))) == [Outcome.RETRY]
