"""The HTTP function on functions-framework (Flask): each request through the shared API."""

from __future__ import annotations

from typing import Any

import flask
import functions_framework
from werkzeug.exceptions import HTTPException

from smscode.domain.errors import InvalidRequest, PayloadTooLarge, SmsCodeError
from smscode.entrypoints.clientip import client_ip
from smscode.entrypoints.http import api
from smscode.entrypoints.web import MAX_BODY_BYTES, HttpRequest, error_response


def handle_flask(request: Any) -> tuple[bytes, int, dict[str, str]]:
    """Answer a functions-framework (Flask) request through the shared route table."""
    # Read at most one byte past the limit, so an oversized body costs no more than that.
    body = request.stream.read(MAX_BODY_BYTES + 1)
    routes = api()
    # Werkzeug's headers answer any-case lookups straight from the WSGI environ: copying
    # them into a dict cost more than every lookup the API makes.
    headers = request.headers
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


def handle_flask_error(error: HTTPException) -> tuple[bytes, int, dict[str, str]]:
    """Werkzeug's own refusals, before our function runs, in the contract's JSON error shape.

    Its router cannot match some paths (`/<path:path>` stops at a newline) and it refuses
    malformed requests itself; without this they would get Flask's HTML pages.
    """
    if error.code == 404:  # the route table decides, so each API answers in its own shape
        return handle_flask(flask.request)
    mapped: SmsCodeError
    if error.code == 413:
        mapped = PayloadTooLarge(f"The request body is larger than {MAX_BODY_BYTES} bytes.")
    else:
        mapped = InvalidRequest("The request is malformed.")
    response = error_response(mapped)
    return response.body, response.status, response.headers


# Werkzeug's own 4xx answers (paths its router cannot match) in the contract's JSON shape.
functions_framework.errorhandler(HTTPException)(handle_flask_error)


@functions_framework.http
def handle(request: Any) -> tuple[bytes, int, dict[str, str]]:
    """The HTTP function: every route of the contract's HTTP API."""
    return handle_flask(request)
