"""The queue message model and the sealing of codes."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from smscode.domain.messages import DeliveryMessage
from smscode.domain.sealing import Sealer, SealError


def make_message(**changes: object) -> DeliveryMessage:
    now = datetime.now(UTC)
    fields: dict[str, object] = {
        "message_id": uuid.uuid4().hex,
        "request_id": uuid.uuid4().hex,
        "phone": "+8613800138000",
        "sealed_code": "c2VhbGVk",
        "minutes": 5,
        "created_at": now,
        "expires_at": now + timedelta(minutes=5),
    }
    fields.update(changes)
    return DeliveryMessage.model_validate(fields)


def test_message_round_trips_through_its_wire_form() -> None:
    message = make_message()
    assert DeliveryMessage.from_json(message.to_json()) == message
    assert '"version":1' in message.to_json()


@pytest.mark.parametrize(
    "changes",
    [
        {"version": 2},
        {"phone": "13800138000"},
        {"message_id": "not-hex"},
        {"template_id": "abc"},
        {"minutes": 0},
        {"created_at": datetime(2026, 1, 1)},  # naive: no time zone
        {"surprise": "field"},
    ],
)
def test_message_refuses_what_it_does_not_know(changes: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        make_message(**changes)


def test_unknown_schema_version_on_the_wire_is_refused() -> None:
    wire = make_message().to_json().replace('"version":1', '"version":9')
    with pytest.raises(ValidationError):
        DeliveryMessage.from_json(wire)


def test_sealed_code_opens_only_for_its_message_and_key() -> None:
    sealer = Sealer(b"k" * 32)
    sealed = sealer.seal("123456", "a" * 32)
    assert "123456" not in sealed
    assert sealer.open(sealed, "a" * 32) == "123456"
    with pytest.raises(SealError):
        sealer.open(sealed, "b" * 32)
    with pytest.raises(SealError):
        Sealer(b"x" * 32).open(sealed, "a" * 32)
    with pytest.raises(SealError):
        sealer.open("garbage!", "a" * 32)


def test_sealing_twice_gives_different_ciphertexts() -> None:
    sealer = Sealer(b"k" * 32)
    assert sealer.seal("123456", "a" * 32) != sealer.seal("123456", "a" * 32)


def test_a_message_queued_by_an_earlier_release_with_its_template_id_is_still_read() -> None:
    legacy = json.loads(make_message().to_json()) | {"template_id": "1"}
    assert DeliveryMessage.from_json(json.dumps(legacy)).template_id == "1"
    assert "template_id" not in make_message().to_json()
