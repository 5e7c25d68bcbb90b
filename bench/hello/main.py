"""The reference functions, served by the same functions-framework server as smscode.

`hello` is the issue's reference: hello world, reading nothing. `round_trip` is hello world
that first makes one Redis round trip (a PING through redis-py, the client smscode uses):
the floor of any path that must ask Redis once, as the send and verify paths must.
"""

import os
from typing import Any

import functions_framework

_clients: list[Any] = []  # redis is imported on first use: `hello` starts without it


@functions_framework.http
def hello(request: Any) -> str:
    """Answer every request with a fixed text, reading nothing."""
    return "Hello, World!"


@functions_framework.http
def round_trip(request: Any) -> str:
    """Hello world after one PING to REDIS_URL over a client made once per process."""
    if not _clients:
        import redis

        _clients.append(redis.Redis.from_url(os.environ["REDIS_URL"]))
    _clients[0].ping()
    return "Hello, World!"
