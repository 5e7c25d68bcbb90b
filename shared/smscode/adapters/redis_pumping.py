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

    def unblock(self, block: str, window_seconds: int) -> bool:
        """Lift the block's refusals, for everyone and for single networks, and empty its
        window and its networks' counts, so its old sends cannot re-block it.

        `window_seconds` (the rule's) finds the networks hashes of this epoch and the last.
        """
        epoch = self._clock() // (1000 * window_seconds)
        with redis_errors():
            members = self.client.zrange(keys.pumping_network_blocked(), 0, -1)
            mine = [str(m) for m in members if str(m).startswith(f"{block} ")]
            pipe = self.client.pipeline(transaction=True)
            pipe.zrem(keys.pumping_blocked(), block)
            pipe.hdel(keys.pumping_details(), block, *mine)
            pipe.delete(
                keys.pumping_window(block),
                keys.pumping_networks(block, epoch),
                keys.pumping_networks(block, epoch - 1),
            )
            if mine:
                pipe.zrem(keys.pumping_network_blocked(), *mine)
            removed = pipe.execute()[0]
        return bool(removed) or bool(mine)

    def blocked(self) -> list[BlockedBlock]:
        """The refusals in force, soonest to end first within each kind: blocks refused to
        everyone, then to single networks. Ended ones are dropped on the way."""
        now = self._clock()
        with redis_errors():
            pipe = self.client.pipeline(transaction=True)
            pipe.zremrangebyscore(keys.pumping_blocked(), "-inf", now)
            pipe.zrange(keys.pumping_blocked(), 0, -1, withscores=True)
            pipe.zrangebyscore(keys.pumping_network_blocked(), "-inf", now)
            pipe.zremrangebyscore(keys.pumping_network_blocked(), "-inf", now)
            pipe.zrange(keys.pumping_network_blocked(), 0, -1, withscores=True)
            pipe.hgetall(keys.pumping_details())
            _, entries, ended, _, by_network, details = pipe.execute()
            if ended:  # a network refusal's reason goes with it
                self.client.hdel(keys.pumping_details(), *ended)
        result = []
        for member, until in [*entries, *by_network]:
            block, _, network = str(member).partition(" ")
            how, _, numbers = str(details.get(member, "manual")).partition(":")
            sends, _, verified = numbers.partition(":")
            result.append(BlockedBlock(
                block=block, until_ms=int(until), reason=how,
                sends=int(sends) if sends.isdigit() else 0,
                verified=int(verified) if verified.isdigit() else 0,
                network=network or None,
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
