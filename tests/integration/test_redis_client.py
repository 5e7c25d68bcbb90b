"""The project's Redis client: a command is retried only when Redis surely never got it."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import redis

from smscode.adapters.redis_client import connect, redis_errors
from smscode.domain.errors import Unavailable
from tests.tcp_proxy import HoldingProxy


@pytest.fixture
def proxy(redis_url: str) -> Iterator[HoldingProxy]:
    """A proxy in front of the run's Redis."""
    where = urlsplit(redis_url)
    with HoldingProxy(where.hostname or "127.0.0.1", where.port or 6379) as running:
        yield running


def through(redis_url: str, proxy: HoldingProxy) -> str:
    return urlsplit(redis_url)._replace(netloc=f"127.0.0.1:{proxy.port}").geturl()


def test_a_reply_slower_than_the_read_timeout_is_unavailable_and_never_sent_again(
    redis_url: str, proxy: HoldingProxy, redis_client: redis.Redis
) -> None:
    # given: a script that counts its runs, its reply held past the 1 s read timeout
    client = connect(through(redis_url, proxy))
    client.set("runs", 0)
    counting = client.register_script("return redis.call('INCR', KEYS[1])")
    assert counting(keys=["runs"]) == 1  # loaded, so the held reply is the script's own
    proxy.hold_next(b"runs", 1.5)
    # when / then
    with pytest.raises(Unavailable), redis_errors():
        counting(keys=["runs"])
    assert proxy.held.wait(5)
    assert redis_client.get("runs") == "2"  # ran once for the held call, not twice
    # and the client goes on at once on a fresh connection
    assert counting(keys=["runs"]) == 3


@pytest.mark.parametrize("own_connection", [False, True], ids=["pooled", "a-thread's-own"])
def test_a_connection_the_server_closed_while_idle_reconnects_transparently(
    redis_url: str, redis_client: redis.Redis, own_connection: bool
) -> None:
    # given: a client whose idle connection the server has since closed (as a restart does)
    shared = connect(redis_url)
    client = shared
    if own_connection:  # as RedisStore._thread_client holds one
        assert isinstance(shared, redis.Redis)
        client = redis.Redis(connection_pool=shared.connection_pool, single_connection_client=True)
    assert client.ping()
    name = f"idle-{own_connection}"
    client.client_setname(name)
    [idle] = [c for c in redis_client.client_list() if c["name"] == name]
    redis_client.client_kill_filter(_id=idle["id"])
    # when / then: the next command reconnects, without an error and run once
    assert client.incr("counted") == 1
    assert redis_client.get("counted") == "1"
