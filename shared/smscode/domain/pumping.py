"""SMS pumping: the conversion rule per number block, and which block a number falls in."""

from __future__ import annotations

from dataclasses import dataclass, field

import phonenumbers


def block_of(e164: str) -> str:
    """The number block a phone is judged by: `1380013` for +86 13800138000, else `+<cc>`.

    A mainland block (first seven national digits) is one operator's range of 10,000
    numbers, the unit pumpers rent; abroad, the country code is the unit the fee goes to.
    """
    if e164.startswith("+86"):
        return e164[3:10]
    try:
        return f"+{phonenumbers.parse(e164).country_code}"
    except phonenumbers.NumberParseException:
        return e164[:4]


@dataclass(frozen=True)
class PumpingRule:
    """A block whose window holds >= min_sends sends, under min_conversion verified, is refused."""

    min_sends: int = 20
    min_conversion: float = 0.2
    window_seconds: int = 3600
    block_seconds: int = 3600
    # Phones (E.164) and blocks never judged by the rule: an operator's own ranges, QA phones.
    allow: frozenset[str] = field(default_factory=frozenset)

    @property
    def bucket_seconds(self) -> int:
        """The window is summed from 60 buckets (per minute for the default hour)."""
        return max(1, self.window_seconds // 60)

    @property
    def buckets(self) -> int:
        """How many buckets make up the window."""
        return -(-self.window_seconds // self.bucket_seconds)


@dataclass(frozen=True)
class BlockWatch:
    """What the store needs to count and judge one phone's block in its send or verify step."""

    block: str
    exempt: bool
    rule: PumpingRule

    @classmethod
    def of(cls, phone: str, rule: PumpingRule) -> BlockWatch:
        """The watch for an E.164 phone under the rule; allow-listed phones or blocks exempt."""
        block = block_of(phone)
        return cls(block=block, exempt=phone in rule.allow or block in rule.allow, rule=rule)


@dataclass(frozen=True)
class BlockedBlock:
    """A block refused right now: why (`auto` or `manual`), until when, and its numbers then."""

    block: str
    until_ms: int
    reason: str
    sends: int = 0
    verified: int = 0
