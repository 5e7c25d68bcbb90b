"""The rules a deployment sets: the code's shape and lifetime, and the send caps."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from smscode.domain.pumping import PumpingRule


@dataclass(frozen=True)
class Limits:
    """The send caps the store checks and counts in one atomic step."""

    code_ttl: int
    resend_interval: int
    phone_daily: int
    ip_hourly: int
    prefix_hourly: int
    global_minute: int


@dataclass(frozen=True)
class Policy:
    """Everything the send and verify use cases decide by (built from settings at start)."""

    code_length: int
    limits: Limits
    max_verify_attempts: int
    verify_failures_daily: int
    # Failed verifications one client (IPv4 address, IPv6 /64) may ask for per hour.
    verify_client_hourly: int = 100
    allowed_prefixes: tuple[str, ...] = ("+861",)
    # Fixed codes for app-store reviewers and QA: E.164 phone -> code, no SMS, no caps.
    test_phones: Mapping[str, str] = field(default_factory=dict)
    pumping: PumpingRule = field(default_factory=PumpingRule)

    @property
    def code_ttl(self) -> int:
        """Seconds a code stays valid."""
        return self.limits.code_ttl

    @property
    def resend_interval(self) -> int:
        """Seconds before the same phone may ask again."""
        return self.limits.resend_interval

    @property
    def minutes(self) -> int:
        """The code's lifetime in whole minutes, as the SMS states it."""
        return max(1, self.code_ttl // 60)


@dataclass(frozen=True)
class Rejection:
    """Why a send was refused (the cap's name) and when to try again."""

    reason: str
    retry_after: int
    # (sends, verified) in the window when THIS refusal blocked the number block (pumping).
    new_block: tuple[int, int] | None = None
    # The client network a pumping refusal holds for alone; None when it holds for everyone.
    network: str | None = None
