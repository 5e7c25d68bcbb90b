"""Adapter from a Flask request (functions-framework) to the server-independent API."""

from __future__ import annotations

from typing import Any

from smscode.api import MAX_BODY_BYTES, HttpRequest
from smscode.bootstrap import api
from smscode.clientip import client_ip


def handle_flask(request: Any) -> tuple[bytes, int, dict[str, str]]:
    """Answer a functions-framework (Flask) request through the shared route table."""
    # Read at most one byte past the limit, so an oversized body costs no more than that.
    body = request.stream.read(MAX_BODY_BYTES + 1)
    routes = api()
    headers = {name.lower(): value for name, value in request.headers.items()}
    response = routes.dispatch(
        HttpRequest(
            method=request.method,
            path=request.path,
            headers=headers,
            body=body,
            client_ip=client_ip(request.remote_addr or "unknown", headers),
        )
    )
    return response.body, response.status, response.headers
