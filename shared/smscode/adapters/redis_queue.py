"""A Celery queue on a Redis broker, read the way kombu's Redis transport keeps it.

kombu's worker takes one task per round trip (BRPOP) and records it as unacknowledged in a
second one (MULTI/ZADD/HSET/EXEC), then spends a third to acknowledge it. Here one script
call acknowledges every task finished since the last call and takes as many new ones as
there are idle threads, each recorded in kombu's own `unacked` hash and `unacked_index`
set in the same atomic step (so, unlike with BRPOP, no task is ever off the list and not
yet recorded). A stock Celery worker on the same broker restores our unacknowledged tasks
after the visibility timeout as it restores its own, and we restore its.
"""

from __future__ import annotations

import json
import time
from bisect import bisect
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from redis.client import Pipeline
from redis.exceptions import LockNotOwnedError

from smscode.adapters.redis_client import connect, load_script

# kombu's key names (kombu/transport/redis.py, Channel), with no global key prefix.
UNACKED, UNACKED_INDEX, UNACKED_MUTEX = "unacked", "unacked_index", "unacked_mutex"
_SEP = "\x06\x16"  # kombu's separator in priority queue names and exchange bindings
_PRIORITY_STEPS = [0, 3, 6, 9]
# A blocking wait must end before the client's 1 s socket timeout takes it for a dead server.
_LONGEST_WAIT = 0.5


def restore_interval(visibility_timeout: int) -> int:
    """Seconds between sweeps for the unacknowledged tasks of a dead worker.

    A quarter of the visibility timeout, at most 10 s (kombu's default is 100 s), so a
    SIGKILLed worker's tasks come back soon after the timeout.
    """
    return max(1, min(10, visibility_timeout // 4))


@dataclass(frozen=True)
class Taken:
    """A task taken off the queue: kombu's delivery tag ('' if it had none) and the envelope."""

    tag: str
    envelope: str


class RedisQueue:
    """One Celery queue on a Redis broker: take, acknowledge, restore, push."""

    def __init__(self, url: str, queue: str, *, visibility_timeout: int) -> None:
        self._client = connect(url)
        self._queue = queue
        self._routing = json.dumps(queue)
        self._visibility_timeout = visibility_timeout
        self._take = load_script(self._client, "queue_take")

    def take(self, count: int, acks: list[str], keep: list[str]) -> list[Taken]:
        """Acknowledge `acks`, keep `keep` visible (retrying here), take up to `count` tasks."""
        args: list[Any] = [time.time(), count, self._routing, len(acks), *acks, *keep]
        flat = self._take(keys=[self._queue, UNACKED, UNACKED_INDEX], args=args)
        return [Taken(str(flat[i]), str(flat[i + 1])) for i in range(0, len(flat), 2)]

    def wait(self, seconds: float) -> None:
        """Block until the queue holds a task or `seconds` (at most 0.5) pass; take nothing.

        BLMOVE from the list's tail to its tail returns an element without moving it: it
        only wakes us, and the task stays on the list until `take` records it.
        """
        timeout = min(_LONGEST_WAIT, max(0.01, seconds))
        # redis-py types the timeout as whole seconds; Redis takes a fraction since 6.0.
        self._client.blmove(self._queue, self._queue, timeout, "RIGHT", "RIGHT")  # type: ignore[arg-type]

    def push(self, envelope: str) -> None:
        """Queue one envelope (as kombu's publish does: LPUSH, the consumer pops the tail)."""
        self._client.lpush(self._queue, envelope)

    def give_back(self, tags: list[str]) -> None:
        """Put unacknowledged tasks back on their queue now (a worker shutting down)."""
        for tag in tags:
            self._restore(tag)

    def restore_overdue(self, mutex_seconds: int, limit: int = 1000) -> int:
        """Put back every task unacknowledged longer than the visibility timeout; how many.

        Under kombu's own mutex, as its `restore_visible`, so only one worker sweeps at a time.
        """
        lock = self._client.lock(UNACKED_MUTEX, timeout=mutex_seconds)
        if not lock.acquire(blocking=False):
            return 0
        try:
            ceiling = time.time() - self._visibility_timeout
            tags = self._client.zrangebyscore(UNACKED_INDEX, "-inf", ceiling, start=0, num=limit)
            for tag in tags:
                self._restore(str(tag))
            return len(tags)
        finally:
            with suppress(LockNotOwnedError):  # held past its expiry: another may sweep now
                lock.release()

    def _restore(self, tag: str) -> None:
        """kombu's `restore_by_tag`: out of the unacked records and onto the queue, atomically."""

        def move(pipe: Pipeline) -> None:
            entry = pipe.hget(UNACKED, tag)
            destinations = self._destinations(pipe, str(entry)) if entry else []
            pipe.multi()
            pipe.zrem(UNACKED_INDEX, tag)
            pipe.hdel(UNACKED, tag)
            for key, envelope in destinations:
                pipe.rpush(key, envelope)  # the tail: it is the next task taken

        self._client.transaction(move, UNACKED)

    @staticmethod
    def _destinations(pipe: Pipeline, entry: str) -> list[tuple[str, str]]:
        """Where kombu would restore an unacked entry: its queues' lists for its priority."""
        message, exchange, routing_key = json.loads(entry)
        try:
            message["headers"]["redelivered"] = True
            message["properties"]["delivery_info"]["redelivered"] = True
        except (KeyError, TypeError):
            pass
        if exchange:  # a direct exchange: the queues bound with this routing key
            bindings = (str(b).split(_SEP) for b in pipe.smembers(f"_kombu.binding.{exchange}"))
            queues = [parts[2] for parts in bindings if len(parts) == 3 and parts[0] == routing_key]
        else:
            queues = [routing_key]
        try:
            priority = min(9, max(0, int(message["properties"].get("priority") or 0)))
        except (KeyError, TypeError, ValueError, AttributeError):
            priority = 0
        step = _PRIORITY_STEPS[bisect(_PRIORITY_STEPS, priority) - 1]
        body = json.dumps(message)
        return [(f"{queue}{_SEP}{step}" if step else queue, body) for queue in queues]
