"""The operator's use cases against SMS pumping: block and unblock by hand, the dashboard."""

from __future__ import annotations

import logging
import re
import time
from datetime import UTC, datetime
from typing import Any

from smscode.domain.errors import InvalidRequest, NotFound
from smscode.domain.pumping import PumpingRule
from smscode.service_layer.ports import Clock, Metrics, PumpingStore

log = logging.getLogger("smscode.service")

# A mainland block (seven national digits, 1xxxxxx) or a country code (+44).
BLOCK = re.compile(r"1[0-9]{6}|\+[1-9][0-9]{0,2}")
HOURS = 24
TOP_BLOCKS = 20


def _conversion(sends: int, verified: int) -> float | None:
    return round(min(1.0, verified / sends), 4) if sends else None


def _iso(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat().replace("+00:00", "Z")


class Operator:
    """What the /admin routes do: numbers for the dashboard and blocks set by hand."""

    def __init__(
        self, rule: PumpingRule, store: PumpingStore, metrics: Metrics, clock: Clock = time.time
    ) -> None:
        self._rule = rule
        self._store = store
        self._metrics = metrics
        self._clock = clock

    def _checked(self, block: str) -> str:
        if not BLOCK.fullmatch(block):
            raise InvalidRequest(
                "A number block is seven digits (1380013) or a country code (+44)."
            )
        return block

    def block(self, block: str, by: str, seconds: int | None = None) -> dict[str, Any]:
        """Refuse the block's sends for `seconds` (PUMPING_BLOCK_SECONDS by default).

        Raises:
            InvalidRequest: not a block, or one PUMPING_ALLOW exempts.
        """
        block = self._checked(block)
        if block in self._rule.allow:
            raise InvalidRequest(f"The block {block} is in PUMPING_ALLOW: it is never refused.")
        seconds = seconds or self._rule.block_seconds
        self._store.block(block, seconds, f"manual:{by}")
        self._metrics.pumping_blocked("manual")
        log.warning("number block %s blocked by hand by %s for %d s", block, by, seconds)
        return {"block": block, "until": _iso(self._clock() + seconds), "retry_after": seconds}

    def unblock(self, block: str, by: str) -> None:
        """Lift a block, for everyone and for single networks, and forget its window.

        Raises:
            InvalidRequest, NotFound: not blocked now.
        """
        block = self._checked(block)
        if not self._store.unblock(block, self._rule.window_seconds):
            raise NotFound(f"The block {block} is not blocked.")
        log.warning("number block %s unblocked by hand by %s", block, by)

    def stats(self) -> dict[str, Any]:
        """The dashboard's numbers: per hour over 24 h, top blocks, blocks refused now."""
        now = self._clock()
        hours = self._store.hourly(HOURS)
        for row in hours:
            row["hour"] = _iso(row["hour"] * 3600)
            row["conversion"] = _conversion(row["sends"], row["verified"])
        blocked = self._store.blocked()
        refused_now = {entry.block for entry in blocked if entry.network is None}
        top = self._store.top_blocks(HOURS, TOP_BLOCKS)
        for row in top:
            row["conversion"] = _conversion(row["sends"], row["verified"])
            row["blocked"] = row["block"] in refused_now
        delivery: dict[str, int] = {}
        for row in hours:
            for state, count in row["delivery"].items():
                delivery[state] = delivery.get(state, 0) + count
        rule = self._rule
        return {
            "status": "success",
            "generated_at": _iso(now),
            "rule": {
                "min_sends": rule.min_sends,
                "min_conversion": rule.min_conversion,
                "min_networks": rule.min_networks,
                "window_seconds": rule.window_seconds,
                "block_seconds": rule.block_seconds,
            },
            "totals": {
                name: sum(row[name] for row in hours) for name in ("sends", "verified", "refused")
            },
            "hours": hours,
            "blocks": top,
            "blocked": [
                {
                    "block": entry.block,
                    "reason": entry.reason,
                    "network": entry.network,
                    "until": _iso(entry.until_ms / 1000),
                    "retry_after": max(1, int(entry.until_ms / 1000 - now + 0.999)),
                    "sends": entry.sends,
                    "verified": entry.verified,
                }
                for entry in blocked
            ],
            "delivery": delivery,
        }
