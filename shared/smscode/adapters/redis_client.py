"""The Redis client and what every Redis adapter shares: errors, scripts, the clock."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.commands.core import Script
from redis.retry import Retry

from smscode.domain.errors import Unavailable

Client = redis.Redis | RedisCluster
CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


def connect(url: str) -> Client:
    """A Redis client that fails fast: a down server is a 503 within about a second.

    One retry on a broken connection lets a pooled socket left over from a restarted
    server reconnect transparently, so the service recovers by itself. A
    `redis+cluster://` (or `rediss+cluster://`) URL names any node of a Redis Cluster
    (ElastiCache cluster mode): every script's keys share one hash slot (see `keys`).

    One connection per thread in a command at that moment: redis-py 8 caps a pool at 100
    by default and refuses the 101st concurrent command (MaxConnectionsError, a 503 or a
    retry) though Redis would serve it; a worker at 128 threads or a process running 32
    SQS batches at once goes past 100. The cap here is Redis's own default `maxclients`.
    """
    options: dict[str, Any] = {
        "max_connections": 10_000,
        "socket_connect_timeout": 0.5,
        "socket_timeout": 1.0,
        "retry": Retry(NoBackoff(), 1),
        "health_check_interval": 30,
        "decode_responses": True,
    }
    scheme, sep, rest = url.partition("://")
    if scheme in CLUSTER_SCHEMES:
        return RedisCluster.from_url(f"{CLUSTER_SCHEMES[scheme]}{sep}{rest}", **options)
    return redis.Redis.from_url(url, **options)


@contextmanager
def redis_errors() -> Iterator[None]:
    """Turn a Redis that cannot serve now into Unavailable (a 503, or a retry).

    Besides a lost connection: a replica promoted a moment ago (READONLY), a server still
    loading its data or out of memory, a cluster without a majority. Any other error is a
    bug and stays what it is.
    """
    try:
        yield
    except _PASSING as error:
        raise Unavailable("The code store is unavailable; please try again shortly.") from error


# redis-py's classes for "not now" rather than "wrong": the next try may pass.
_PASSING = (
    redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError, redis.exceptions.BusyLoadingError,
    redis.exceptions.OutOfMemoryError, redis.exceptions.MasterDownError,
    redis.exceptions.ClusterDownError, redis.exceptions.TryAgainError,
)  # fmt: skip


def load_script(client: Client, name: str, *libraries: str) -> Script:
    """Register `lua/<name>.lua` on the client (EVALSHA, loaded again after a restart).

    Each of `libraries` (`lua/<library>.lua`, local functions) is put before the script:
    Redis scripts cannot include one another.
    """
    lua = resources.files("smscode.adapters").joinpath("lua")
    source = "".join(lua.joinpath(f"{part}.lua").read_text() for part in (*libraries, name))
    return client.register_script(source)


def now_ms() -> int:
    """Milliseconds since the epoch: the clock every script is given."""
    return int(time.time() * 1000)
