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
from redis.connection import AbstractConnection, parse_url
from redis.exceptions import ClusterDownError, SlotNotCoveredError
from redis.retry import Retry

from smscode.domain.errors import Unavailable

Client = redis.Redis | RedisCluster
CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


class CommandNotSent(redis.exceptions.ConnectionError):
    """The command never reached Redis whole, so sending it again cannot run it twice.

    Connecting, the handshake, the idle health check or the write itself failed (a command
    cut off mid-write is never run: Redis waits for all of it). Any failure after the write,
    a reply slower than the read timeout above all, may follow a command Redis ran.
    """


class _SendsOnce(AbstractConnection):
    """A connection whose failures before its command was written are CommandNotSent."""

    _handshaking = False

    def connect_check_health(self, *args: Any, **kwargs: Any) -> None:
        self._handshaking = True  # it sends several commands before reading their replies
        try:
            super().connect_check_health(*args, **kwargs)
        except CommandNotSent:
            raise
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as error:
            raise CommandNotSent(str(error)) from error
        finally:
            self._handshaking = False

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        try:
            # Anything readable before a command (data, or the end of a socket a restarted
            # server closed) means a stale connection: start afresh, nothing sent yet. The
            # pool looks too, but a thread's own connection is never handed out again.
            if check_health and not self._handshaking and self._sock and self.can_read():
                self.disconnect()
                raise CommandNotSent("The connection had data before the command was sent.")
            super().send_packed_command(command, check_health)  # type: ignore[no-untyped-call]
        except CommandNotSent:
            raise
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as error:
            raise CommandNotSent(str(error)) from error


class _Tcp(_SendsOnce, redis.Connection):
    pass


class _Tls(_SendsOnce, redis.SSLConnection):
    pass


class _Unix(_SendsOnce, redis.UnixDomainSocketConnection):
    pass


_SENDS_ONCE: dict[type, type] = {
    redis.Connection: _Tcp, redis.SSLConnection: _Tls, redis.UnixDomainSocketConnection: _Unix,
}  # fmt: skip


class _Cluster(RedisCluster):
    """RedisCluster retrying only what no node ran: a command never sent, or refused whole.

    RedisCluster retries (after a topology refresh) the exact error types listed here; its
    own list also has every ConnectionError and TimeoutError, which re-runs a script whose
    reply was merely slow.
    """

    # (its annotation names the exact four types; any tuple of error types works)
    ERRORS_ALLOW_RETRY = (CommandNotSent, ClusterDownError, SlotNotCoveredError)  # type: ignore[assignment]


def connect(url: str) -> Client:
    """A Redis client that fails fast (a down server is a 503 within about a second) and
    never sends a command twice.

    A command is retried once, at once, only when it surely never reached Redis
    (CommandNotSent): so a pooled socket left over from a restarted server reconnects
    transparently, and the service recovers by itself. A reply that does not come within
    the read timeout is not retried: the script may have run, and running it again would
    count a cap twice or answer a right code `no_active_code`; the caller gets Unavailable
    (a 503, or a delivery retry) instead. A `redis+cluster://` (or `rediss+cluster://`) URL
    names any node of a Redis Cluster (ElastiCache cluster mode): every script's keys share
    one hash slot (see `keys`).

    One connection per thread in a command at that moment: redis-py 8 caps a pool at 100
    by default and refuses the 101st concurrent command (MaxConnectionsError, a 503 or a
    retry) though Redis would serve it; a worker at 128 threads or a process running 32
    SQS batches at once goes past 100. The cap here is Redis's own default `maxclients`.
    """
    options: dict[str, Any] = {
        "max_connections": 10_000,
        "socket_connect_timeout": 0.5,
        "socket_timeout": 1.0,
        "retry": Retry(NoBackoff(), 1, supported_errors=(CommandNotSent,)),
        "health_check_interval": 30,
        "decode_responses": True,
    }
    scheme, sep, rest = url.partition("://")
    plain = f"{CLUSTER_SCHEMES.get(scheme, scheme)}{sep}{rest}"
    parsed: dict[str, Any] = parse_url(plain)  # type: ignore[no-untyped-call]
    options["connection_class"] = _SENDS_ONCE[parsed.get("connection_class", redis.Connection)]
    if scheme in CLUSTER_SCHEMES:
        # The URL's options as arguments: RedisCluster(url=...) would put redis-py's own
        # connection class back for rediss.
        if parsed.pop("db", 0) != 0:
            raise ValueError("a Redis Cluster has only database 0")
        return _Cluster(**{**parsed, **options})
    return redis.Redis.from_url(plain, **options)


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
