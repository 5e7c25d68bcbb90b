"""Adapter from API Gateway HTTP API events (payload 2.0) to the server-independent API."""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Mapping
from typing import Any

from smscode.adapters.metrics import flush_emf
from smscode.domain.errors import InvalidRequest, Unavailable
from smscode.entrypoints.clientip import client_ip
from smscode.entrypoints.web import MAX_BODY_BYTES, HttpRequest, HttpResponse, error_response
from smscode.settings import SettingsError

log = logging.getLogger("smscode.lambda_http")

# Enough base64 characters to decode one byte past the limit, as web.py reads one byte past it.
_MAX_B64_CHARS = 4 * ((MAX_BODY_BYTES + 1 + 2) // 3)


def to_request(event: Mapping[str, Any]) -> HttpRequest:
    """The API's request for an HTTP API 2.0 event.

    Raises:
        InvalidRequest: a body flagged base64 that does not decode.
    """
    http = event["requestContext"]["http"]
    raw = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            body = base64.b64decode(raw[:_MAX_B64_CHARS], validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequest("The request body is not valid base64.") from None
    else:
        body = raw.encode()
    headers = {name.lower(): value for name, value in (event.get("headers") or {}).items()}
    return HttpRequest(
        method=http["method"],
        path=event.get("rawPath") or http.get("path") or "/",
        headers=headers,
        body=body[: MAX_BODY_BYTES + 1],
        client_ip=client_ip(http.get("sourceIp") or "unknown", headers),
    )


def to_result(response: HttpResponse) -> dict[str, Any]:
    """The HTTP API 2.0 result for the API's response: text as is, anything else base64."""
    try:
        body, encoded = response.body.decode(), False
    except UnicodeDecodeError:
        body, encoded = base64.b64encode(response.body).decode(), True
    return {
        "statusCode": response.status,
        "headers": dict(response.headers),
        "body": body,
        "isBase64Encoded": encoded,
    }


def handle_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """Answer one API Gateway event through the shared route table; never raises."""
    from smscode.adapters import ssm
    from smscode.entrypoints.http import api

    try:
        ssm.load_parameters()
        routes = api()
    except SettingsError as error:
        log.error("settings: %s", error)
        return to_result(error_response(Unavailable("The service is not configured.")))
    try:
        request = to_request(event)
    except InvalidRequest as error:
        return to_result(error_response(error))
    return to_result(routes.dispatch(request))


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda handler: one API Gateway event, then this invocation's metrics as EMF."""
    try:
        return handle_event(event)
    finally:
        flush_emf()
