"""The operator's side of SMS pumping on Redis: blocks by hand, and the dashboard's counts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from smscode.adapters import keys
from smscode.adapters.redis_client import Client, now_ms, redis_errors
from smscode.adapters.redis_store import HOUR_MS
from smscode.domain.pumping import BlockedBlock

STATE_FIELDS = ("sends", "verified", "refused")
CANDIDATES = 50  # per hour, for the day's top blocks


class RedisPumping:
    """The `PumpingStore` port: reads what issue.lua, verify.lua and finish.lua count."""

    def __init__(self, client: Client, clock: Callable[[], int] = now_ms) -> None:
        self.client = client
        self._clock = clock

    def block(self, block: str, seconds: int, reason: str) -> None:
        """Refuse the block's sends for `seconds` (reason: `manual:<key id>`)."""
        with redis_errors():
            pipe = self.client.pipeline(transaction=True)
            pipe.zadd(keys.pumping_blocked(), {block: self._clock() + 1000 * seconds})
            pipe.hset(keys.pumping_details(), block, reason)
            pipe.execute()

    def unblock(self, block: str) -> bool:
        """Lift the refusal and empty the block's window, so its old sends cannot re-block it."""
        with redis_errors():
            pipe = self.client.pipeline(transaction=True)
            pipe.zrem(keys.pumping_blocked(), block)
            pipe.hdel(keys.pumping_details(), block)
            pipe.delete(keys.pumping_window(block))
            removed, _, _ = pipe.execute()
        return bool(removed)

    def blocked(self) -> list[BlockedBlock]:
        """The blocks refused now, soonest to end first; ended ones are dropped on the way."""
        now = self._clock()
        with redis_errors():
            pipe = self.client.pipeline(transaction=True)
            pipe.zremrangebyscore(keys.pumping_blocked(), "-inf", now)
            pipe.zrange(keys.pumping_blocked(), 0, -1, withscores=True)
            pipe.hgetall(keys.pumping_details())
            _, entries, details = pipe.execute()
        result = []
        for block, until in entries:
            how, _, numbers = str(details.get(block, "manual")).partition(":")
            sends, _, verified = numbers.partition(":")
            result.append(BlockedBlock(
                block=block, until_ms=int(until), reason=how,
                sends=int(sends) if sends.isdigit() else 0,
                verified=int(verified) if verified.isdigit() else 0,
            ))  # fmt: skip
        return result

    def _hours(self, hours: int) -> list[int]:
        current = self._clock() // HOUR_MS
        return list(range(current - hours + 1, current + 1))

    def hourly(self, hours: int) -> list[dict[str, Any]]:
        """Counts per hour, oldest first: hour (epoch hours), sends, verified, refused, delivery."""
        span = self._hours(hours)
        with redis_errors():
            pipe = self.client.pipeline(transaction=False)
            for hour in span:
                pipe.hgetall(keys.stats_hour(hour))
            counts = pipe.execute()
        result = []
        for hour, raw in zip(span, counts, strict=True):
            row: dict[str, Any] = {
                "hour": hour,
                **{name: int(raw.get(name, 0)) for name in STATE_FIELDS},
            }
            row["delivery"] = {
                name.removeprefix("delivery_"): int(value)
                for name, value in raw.items()
                if name.startswith("delivery_")
            }
            result.append(row)
        return result

    def top_blocks(self, hours: int, limit: int) -> list[dict[str, Any]]:
        """The blocks with the most sends over the last `hours`, with verified and refused.

        Candidates are each hour's top CANDIDATES blocks, then summed exactly over every
        hour: a union of whole hours would read every block of the day in one command,
        which on a busy service stalls Redis for everyone.
        """
        span = self._hours(hours)
        with redis_errors():
            pipe = self.client.pipeline(transaction=False)
            for hour in span:
                pipe.zrevrange(keys.stats_hour_sends(hour), 0, CANDIDATES - 1)
            names = sorted({str(name) for top in pipe.execute() for name in top})
            if not names:
                return []
            pipe = self.client.pipeline(transaction=False)
            for hour in span:
                pipe.zmscore(keys.stats_hour_sends(hour), names)
                pipe.zmscore(keys.stats_hour_verified(hour), names)
                pipe.zmscore(keys.stats_hour_refused(hour), names)
            columns = pipe.execute()
        totals = {name: [0, 0, 0] for name in names}
        for n, column in enumerate(columns):
            for name, score in zip(names, column, strict=True):
                totals[name][n % 3] += int(score or 0)
        top = sorted(names, key=lambda name: (-totals[name][0], name))[:limit]
        return [
            {"block": name, "sends": totals[name][0], "verified": totals[name][1],
             "refused": totals[name][2]}
            for name in top
        ]  # fmt: skip
