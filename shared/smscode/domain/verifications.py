"""A verification as Twilio Verify models it: one pending code per (service, number) and its life.

The code itself stays the core's (`codes`, the send caps, the queue); a verification only adds
a sid, a status and the record of its sends and checks around the request id it issued.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Literal

from smscode.domain.errors import NotFound, TooManyAttempts

Status = Literal["pending", "approved", "canceled", "max_attempts_reached", "expired"]


def new_sid(prefix: str) -> str:
    """A Twilio-shaped sid: two capitals and 32 lowercase hex digits (`VE…`, `VL…`)."""
    return prefix + secrets.token_hex(16)


@dataclass(frozen=True)
class SendAttempt:
    """One SMS sent for a verification."""

    sid: str  # VL…
    at_ms: int


@dataclass(frozen=True)
class Verification:
    """A verification's record: who it is for, where it stands, when it changed (epoch ms)."""

    sid: str
    service_sid: str
    phone: str
    status: Status
    sends: tuple[SendAttempt, ...]
    created_ms: int
    updated_ms: int

    @property
    def valid(self) -> bool:
        """Twilio's legacy flag: true only once approved."""
        return self.status == "approved"


class VerificationNotFound(NotFound):
    """No pending verification answers (never started, approved, canceled, expired)."""


class MaxCheckAttempts(TooManyAttempts):
    """The verification took its last wrong code (or the number is locked for the day)."""
