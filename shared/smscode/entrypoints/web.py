"""The HTTP core, independent of any server and of any route: requests, answers, the router.

Route modules (`codes`, `admin`, `static`, `twilio_verify`) build on it; `http` puts them
together. This module imports none of them.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

from smscode.domain.errors import (
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    SmsCodeError,
    Unauthorized,
)

log = logging.getLogger("smscode.api")

MAX_BODY_BYTES = 4096
JSON = "application/json"
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_CORS_PREFLIGHT_MAX_AGE = "600"


@dataclass(frozen=True)
class HttpRequest:
    """What any adapter hands the API: headers looked up by lower-case name, body as bytes."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    client_ip: str


@dataclass
class HttpResponse:
    """What the API hands back to the adapter."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[HttpRequest, re.Match[str]], HttpResponse]
Route = tuple[re.Pattern[str], dict[str, Handler]]


def json_response(status: int, payload: Mapping[str, Any]) -> HttpResponse:
    """A JSON answer."""
    return HttpResponse(status, json.dumps(payload).encode(), {"Content-Type": JSON})


def error_response(error: SmsCodeError) -> HttpResponse:
    """The contract's error body for any core error: the ONE mapping every adapter uses."""
    response = json_response(error.status, error.body())
    if "retry_after" in error.fields:
        response.headers["Retry-After"] = str(error.fields["retry_after"])
    if isinstance(error, Unauthorized):  # a browser then asks for the key (id:secret)
        response.headers["WWW-Authenticate"] = 'Basic realm="smscode admin", charset="UTF-8"'
    return response


def parse_body(request: HttpRequest) -> dict[str, str]:
    """A JSON object or a urlencoded form as a flat dict of strings.

    Raises:
        PayloadTooLarge, InvalidRequest.
    """
    if len(request.body) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"The request body is larger than {MAX_BODY_BYTES} bytes.")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if kind == JSON or kind.endswith("+json"):
            data = json.loads(request.body or b"null")
        elif kind == "application/x-www-form-urlencoded":
            form = parse_qs(request.body.decode(), keep_blank_values=True, strict_parsing=False)
            data = {name: values[-1] for name, values in form.items()}
        else:
            raise InvalidRequest("Send the body as application/json or a urlencoded form.")
    except (ValueError, RecursionError):  # RecursionError: "[[[[…" nested past the stack
        raise InvalidRequest("The request body is not valid JSON or form data.") from None
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    # A phone or code sent as a JSON number is taken as its digits; other types are ignored.
    fields = {
        str(key): str(value)
        for key, value in data.items()
        if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))
    }
    try:  # JSON may carry lone surrogates ("\ud800"), which no later step could encode
        "".join(fields.values()).encode()
    except UnicodeEncodeError:
        raise InvalidRequest("The request body is not valid UTF-8 text.") from None
    return fields


@cache
def package_file(name: str) -> bytes:
    """A file shipped in the package (`page/…`, `openapi.yaml`), read once per process."""
    return resources.files("smscode").joinpath(name).read_bytes()


@cache
def document(name: str) -> bytes:
    """A page of `page/` with the head lines every page shares (page/head.html) in its <head>."""
    marker = b"  <!-- head: page/head.html, put in by the server -->\n"
    return package_file(f"page/{name}").replace(marker, package_file("page/head.html"), 1)


def html_response(body: bytes, **headers: str) -> HttpResponse:
    """A page under the strict Content-Security-Policy every page of ours is served with."""
    return HttpResponse(200, body, {
        "Content-Type": "text/html; charset=utf-8",
        "Content-Security-Policy": PAGE_CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        **headers,
    })  # fmt: skip


class Router:
    """Routes requests to handlers and renders errors; CORS on the paths that allow it."""

    def __init__(
        self,
        routes: Sequence[Route],
        cors_paths: re.Pattern[str],
        cors_origins: Callable[[], frozenset[str]],
    ) -> None:
        self.routes = list(routes)
        self._cors_paths = cors_paths  # browsers on an allowed origin may call these
        self._cors_origins = cors_origins

    def dispatch(self, request: HttpRequest) -> HttpResponse:
        """Answer one request; never raises, never leaks a traceback."""
        origin: str | None = None
        try:
            origin = self._cors_origin(request)
            response = self._route(request, origin)
        except SmsCodeError as error:
            response = error_response(error)
        except Exception:
            log.exception("unexpected error on %s %s", request.method, request.path)
            return json_response(
                500,
                {"status": "error", "error": "internal", "message": "Unexpected server error."},
            )
        if origin is not None:  # errors too, so the calling page can read why it failed
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = "Retry-After"
            response.headers["Vary"] = "Origin"
        return response

    def _cors_origin(self, request: HttpRequest) -> str | None:
        """The request's Origin when CORS_ORIGINS allows it on this path, else None."""
        origin = request.headers.get("origin")
        if origin is None or not self._cors_paths.fullmatch(request.path.rstrip("/")):
            return None
        return origin if origin in self._cors_origins() else None

    def _route(self, request: HttpRequest, origin: str | None = None) -> HttpResponse:
        path = request.path.rstrip("/") or "/"
        for pattern, methods in self.routes:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            if request.method == "OPTIONS" and origin is not None:
                return HttpResponse(204, b"", {
                    "Access-Control-Allow-Methods": ", ".join(methods),
                    "Access-Control-Allow-Headers": "Content-Type",
                    "Access-Control-Max-Age": _CORS_PREFLIGHT_MAX_AGE,
                })  # fmt: skip
            method = "GET" if request.method == "HEAD" else request.method
            if method not in methods:
                raise MethodNotAllowed(f"{request.method} is not allowed on {path}.")
            return methods[method](request, match)
        raise NotFound(f"No route for {path}.")
