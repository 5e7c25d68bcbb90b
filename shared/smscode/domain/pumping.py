"""SMS pumping: the conversion rule per number block, and which block a number falls in."""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass, field
from typing import Literal

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


def network_of(client: str) -> str:
    """The client network a send is judged by: an IPv4 /24 or an IPv6 /48.

    One subscriber, office or small hosting customer rarely holds more than one of these,
    so a block refused on sends from several of them was not refused by one party alone.
    An IPv4-mapped IPv6 address is its IPv4 network; anything else (a phone standing in for
    a client address, "unknown") is its own network.
    """
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return client
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if isinstance(address, ipaddress.IPv4Address):  # on every send: string work, not a network
        return f"{str(address).rpartition('.')[0]}.0/24"
    return f"{ipaddress.IPv6Address(int(address) >> 80 << 80)}/48"


@dataclass(frozen=True)
class PumpingRule:
    """A block whose window holds >= min_sends sends, under min_conversion verified, is refused.

    For everyone only when those sends come from at least min_networks client networks:
    each network puts at most `per_network` sends into the block's window. A network that
    fails the rule on its own sends is refused that block alone.
    """

    min_sends: int = 20
    min_conversion: float = 0.2
    window_seconds: int = 3600
    block_seconds: int = 3600
    min_networks: int = 5
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

    @property
    def per_network(self) -> int:
        """Sends one client network may put into a block's window (at least one)."""
        return math.ceil(self.min_sends / self.min_networks)


@dataclass(frozen=True)
class BlockWatch:
    """What the store needs to count and judge one phone's block in its send or verify step."""

    block: str
    exempt: bool
    rule: PumpingRule
    # False for a test phone (TEST_PHONES): its sends and verifies are counted nowhere, so a
    # published reviewer code cannot lift its block's conversion.
    tracked: bool = True

    @classmethod
    def of(cls, phone: str, rule: PumpingRule, tracked: bool = True) -> BlockWatch:
        """The watch for an E.164 phone under the rule; allow-listed phones or blocks exempt."""
        block = block_of(phone)
        exempt = phone in rule.allow or block in rule.allow
        return cls(block=block, exempt=exempt, rule=rule, tracked=tracked)

    @property
    def mode(self) -> Literal["judge", "stats", "none"]:
        """Judged and counted; counted for the dashboard only (exempt); or not at all."""
        if not self.tracked:
            return "none"
        return "stats" if self.exempt else "judge"


@dataclass(frozen=True)
class BlockedBlock:
    """A block refused right now: why (`auto`, `manual`, or `network`: to that one client
    network only), until when, and its numbers then."""

    block: str
    until_ms: int
    reason: str
    sends: int = 0
    verified: int = 0
    network: str | None = None
