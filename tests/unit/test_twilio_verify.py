"""The Twilio Verify API's pure parts: its settings, sids, dates and the reserved purpose."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from smscode.domain import purposes
from smscode.domain.errors import InvalidRequest
from smscode.domain.verifications import new_sid
from smscode.entrypoints.twilio_verify import account_sid, twilio_date, twilio_time
from smscode.settings import Settings

SERVICE = "VA" + "a1" * 16
BASE = {"redis_url": "redis://127.0.0.1:1/0", "code_secret": "s3cret-code-key-0123456789abcdef"}


def test_service_sids_are_a_comma_list_of_va_sids() -> None:
    settings = Settings(**BASE, verify_service_sids=f" {SERVICE}, ,")
    assert settings.verify_service_sids == frozenset({SERVICE})


@pytest.mark.parametrize("value", ["VA123", "AC" + "a1" * 16, SERVICE + "x"])
def test_anything_but_va_sids_is_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="VA \\+ 32 hex"):
        Settings(**BASE, verify_service_sids=value)


def test_sids_have_twilio_shape() -> None:
    assert re.fullmatch(r"VE[0-9a-f]{32}", new_sid("VE"))
    assert new_sid("VE") != new_sid("VE")
    assert re.fullmatch(r"AC[0-9a-f]{32}", account_sid("app"))
    assert account_sid("app") == account_sid("app") != account_sid("other")


def test_dates_parse_with_the_pattern_twilios_client_uses() -> None:
    ms = 1_764_628_800_123
    parsed = datetime.strptime(twilio_date(ms), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert parsed.timestamp() == ms // 1000
    assert twilio_time(ms).endswith(".123Z")


def test_the_twilio_purpose_is_ours_alone() -> None:
    assert purposes.check(purposes.TWILIO) == purposes.TWILIO  # the core sends under it
    with pytest.raises(InvalidRequest, match="reserved"):
        purposes.public(purposes.TWILIO)  # the native routes refuse it
    assert purposes.public("signup") == "signup"
