"""A Redis that answers 'not now' (out of memory, read-only) is a 503, never a 500."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from smscode.adapters.redis_client import redis_errors
from smscode.domain.errors import Unavailable


@pytest.fixture
def full_redis(redis_client: redis.Redis) -> Iterator[redis.Redis]:
    """The test Redis at its memory limit, refusing writes (OOM), restored afterwards."""
    before = redis_client.config_get("maxmemory*")
    redis_client.config_set("maxmemory-policy", "noeviction")
    redis_client.config_set("maxmemory", "1")
    try:
        yield redis_client
    finally:
        redis_client.config_set("maxmemory", str(before["maxmemory"]))
        redis_client.config_set("maxmemory-policy", str(before["maxmemory-policy"]))


def test_a_redis_out_of_memory_is_unavailable(full_redis: redis.Redis) -> None:
    with pytest.raises(Unavailable), redis_errors():
        full_redis.set("{smscode}:probe", "x")


@pytest.mark.parametrize(
    "reply",
    [
        redis.exceptions.ReadOnlyError("You can't write against a read only replica."),
        redis.exceptions.BusyLoadingError("Redis is loading the dataset in memory"),
        redis.exceptions.MasterDownError("Link with MASTER is down"),
    ],
)
def test_other_passing_replies_are_unavailable(reply: Exception) -> None:
    with pytest.raises(Unavailable), redis_errors():
        raise reply


def test_any_other_error_reply_stays_a_bug(redis_client: redis.Redis) -> None:
    redis_client.hset("{smscode}:probe", "field", "value")
    with pytest.raises(redis.ResponseError), redis_errors():
        redis_client.incr("{smscode}:probe")  # WRONGTYPE
