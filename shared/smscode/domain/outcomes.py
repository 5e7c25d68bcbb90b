"""What one SMS is, the four kinds of answer a provider can give, and how a delivery ends."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


@dataclass(frozen=True)
class Sms:
    """One verification SMS as any provider sends it.

    `key` identifies the accepted send: the same on every attempt, so a provider that
    deduplicates on it (Ronglian's `reqId`, Aliyun's `OutId`) never sends it twice.
    """

    to: str  # E.164
    code: str = field(repr=False)  # never in a repr, a log line or a traceback
    minutes: int
    key: str | None


@dataclass(frozen=True)
class Sent:
    """The provider accepted the SMS (or, for a repeated key, had accepted it before)."""

    sid: str
    repeat: bool = False
    status_code: str = ""  # the provider's own success code, for the log line
    provider: str = ""  # which provider took it, for GET /codes/{request_id}


@dataclass(frozen=True)
class NotSent:
    """The SMS surely did not go out (no connection, or a retryable refusal): retry."""

    reason: str
    status_code: str = ""


@dataclass(frozen=True)
class MaybeSent:
    """The request went out but no usable answer came back: retry with the same key."""

    reason: str
    status_code: str = ""


@dataclass(frozen=True)
class Failed:
    """A permanent refusal (number, template, account, balance, caps): never retried.

    `for_number` marks a refusal about this one number (malformed, blacklisted, its own
    caps) rather than the provider's account or template: it says nothing about whether
    the provider works for anyone else, so it must not open the provider's circuit.
    """

    reason: str
    status_code: str = ""
    for_number: bool = False


Result = Sent | NotSent | MaybeSent | Failed


class Outcome(StrEnum):
    """What a delivery attempt ended in; only RETRY asks the transport to try again later."""

    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    SKIPPED = "skipped"
    EXPIRED = "expired"
    MALFORMED = "malformed"  # not a message this version understands: never retried
