"""The HTTP API, independent of any server: one route table every HTTP entry point uses."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, unquote

from pydantic import SecretStr

from smscode import bootstrap
from smscode.adapters import metrics
from smscode.domain import purposes
from smscode.domain.errors import (
    Forbidden,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    SmsCodeError,
    Unauthorized,
)
from smscode.entrypoints.auth import authenticate, foreign_origin
from smscode.service_layer.pumping import Operator
from smscode.service_layer.send import Sender
from smscode.service_layer.verify import Verifier
from smscode.settings import get_settings

log = logging.getLogger("smscode.api")

MAX_BODY_BYTES = 4096
JSON = "application/json"
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_ASSET_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
# Browsers on an allowed origin may call these routes; the page and assets are same-origin only.
_CORS_PATHS = re.compile(r"/codes(?:/.*)?")
_CORS_PREFLIGHT_MAX_AGE = "600"
# Backends may cache the key set this long: key rotation waits at least this (README).
JWKS_CACHE_CONTROL = "public, max-age=300"


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


def _field(data: Mapping[str, str], *names: str) -> str:
    for name in names:
        if data.get(name):
            return data[name]
    raise InvalidRequest(f"The field '{names[0]}' is required.")


@cache
def _asset(name: str) -> bytes:
    return resources.files("smscode").joinpath("page", name).read_bytes()


@cache
def _document(name: str) -> bytes:
    """A page with the head lines every page shares (page/head.html) put in its <head>."""
    marker = b"  <!-- head: page/head.html, put in by the server -->\n"
    return _asset(name).replace(marker, _asset("head.html"), 1)


@cache
def _asset_file(name: str) -> bytes:
    return resources.files("smscode").joinpath(name).read_bytes()


def _language(accept_language: str) -> str:
    """zh-CN when the browser prefers Chinese to English, else en."""
    for part in accept_language.split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh-CN"
        if tag.startswith("en"):
            return "en"
    return "en"


Handler = Callable[[HttpRequest, re.Match[str]], HttpResponse]
Route = tuple[re.Pattern[str], dict[str, Handler]]


class Api:
    """Routes requests to the code service and renders its answers and errors."""

    def __init__(
        self,
        sender: Callable[[], Sender],
        verifier: Callable[[], Verifier],
        health: Callable[[], None],
        cors_origins: Callable[[], frozenset[str]] = frozenset,
        jwks: Callable[[], Mapping[str, Any]] = lambda: {"keys": []},
        providers: Callable[[], list[dict[str, str | None]]] = list,
        routes: Sequence[Route] = (),
        operator: Callable[[], Operator] | None = None,
        api_keys: Callable[[], Mapping[str, SecretStr]] = dict,
    ) -> None:
        self._sender = sender  # built lazily: the page and 404s need no Redis
        self._verifier = verifier
        self._health = health
        self._cors_origins = cors_origins
        self._jwks = jwks
        self._providers = providers
        self._operator = operator
        self._api_keys = api_keys
        self._routes: list[Route] = [
            (re.compile(r"/"), {"GET": self.page}),
            (re.compile(r"/assets/(?P<name>[a-z]+\.(?:js|css))"), {"GET": self.asset}),
            (re.compile(r"/codes"), {"POST": self.send}),
            (re.compile(r"/codes/verify"), {"POST": self.verify}),
            (re.compile(r"/codes/(?P<request_id>[^/]+)"), {"GET": self.status}),
            (re.compile(r"/healthz"), {"GET": self.healthz}),
            (re.compile(r"/openapi\.yaml"), {"GET": self.openapi}),
            (re.compile(r"/metrics"), {"GET": self.prometheus}),
            (re.compile(r"/\.well-known/jwks\.json"), {"GET": self.key_set}),
            # pumping (issue 19): the operator's dashboard, behind API_KEYS
            (re.compile(r"/admin"), {"GET": self.admin_page}),
            (re.compile(r"/admin/stats"), {"GET": self.admin_stats}),
            (
                re.compile(r"/admin/blocks/(?P<block>[^/]+)"),
                {"PUT": self.admin_block, "DELETE": self.admin_unblock},
            ),
            *routes,
        ]

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
        if origin is None or not _CORS_PATHS.fullmatch(request.path.rstrip("/")):
            return None
        return origin if origin in self._cors_origins() else None

    def _route(self, request: HttpRequest, origin: str | None = None) -> HttpResponse:
        path = request.path.rstrip("/") or "/"
        for pattern, methods in self._routes:
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

    def page(self, request: HttpRequest, _: re.Match[str]) -> HttpResponse:
        """The demo sign-up page, in the browser's language."""
        lang = _language(request.headers.get("accept-language", ""))
        body = _document("index.html").replace(b"__LANG__", lang.encode())
        return HttpResponse(200, body, {
            "Content-Type": "text/html; charset=utf-8",
            "Content-Security-Policy": PAGE_CSP,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Vary": "Accept-Language",
        })  # fmt: skip

    def asset(self, _: HttpRequest, match: re.Match[str]) -> HttpResponse:
        """The page's script and style sheet."""
        name = match["name"]
        try:
            body = _asset(name)
        except FileNotFoundError:
            raise NotFound(f"No asset {name}.") from None
        content_type = _ASSET_TYPES[name[name.rindex(".") :]]
        return HttpResponse(
            200, body, {"Content-Type": content_type, "X-Content-Type-Options": "nosniff"}
        )

    def send(self, request: HttpRequest, _: re.Match[str]) -> HttpResponse:
        """POST /codes: issue a code and queue its SMS."""
        data = parse_body(request)
        issued = self._sender().issue(
            _field(data, "phone", "mobile"),
            request.client_ip,
            purposes.public(data.get("purpose", purposes.DEFAULT)),
        )
        return json_response(202, {
            "status": "success",
            "request_id": issued.request_id,
            "expires_in": issued.expires_in,
            "resend_after": issued.resend_after,
        })  # fmt: skip

    def verify(self, request: HttpRequest, _: re.Match[str]) -> HttpResponse:
        """POST /codes/verify: check and consume a code."""
        data = parse_body(request)
        code = _field(data, "code")
        phone = _field(data, "phone", "mobile")
        purpose = purposes.public(data.get("purpose", purposes.DEFAULT))
        verified = self._verifier().verify(phone, code, purpose, request.client_ip)
        if verified.token is None:
            return json_response(200, {"status": "success"})
        return json_response(200, {"status": "success", "token": verified.token})

    def status(self, _: HttpRequest, match: re.Match[str]) -> HttpResponse:
        """GET /codes/{request_id}: where one send stands."""
        return json_response(
            200, {"status": "success", **self._sender().status(match["request_id"])}
        )

    def _key_id(self, request: HttpRequest) -> str:
        """The API key id the request proves.

        Raises:
            Forbidden: a write from another site's page (`auth.foreign_origin`).
            Unauthorized: no key or a wrong one (also when API_KEYS is unset).
        """
        if foreign_origin(request.method, request.headers, self._cors_origins()):
            raise Forbidden("A keyed change from another site's page is refused.")
        key_id = authenticate(request.headers, self._api_keys())
        if key_id is None:
            raise Unauthorized("Give an API_KEYS key: HTTP Basic or 'Bearer id:secret'.")
        return key_id

    def admin_page(self, request: HttpRequest, _: re.Match[str]) -> HttpResponse:
        """GET /admin: the pumping dashboard (its data comes from /admin/stats)."""
        if request.path.endswith("/"):  # its relative asset URLs need the canonical path
            return HttpResponse(308, b"", {"Location": "../admin"})
        self._key_id(request)
        return HttpResponse(200, _document("admin.html"), {
            "Content-Type": "text/html; charset=utf-8",
            "Content-Security-Policy": PAGE_CSP,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        })  # fmt: skip

    def _operator_or_404(self) -> Operator:
        if self._operator is None:
            raise NotFound("No admin API here.")
        return self._operator()

    def admin_stats(self, request: HttpRequest, _: re.Match[str]) -> HttpResponse:
        """GET /admin/stats: sends, verified, conversion per hour and per block; blocked blocks."""
        self._key_id(request)
        response = json_response(200, self._operator_or_404().stats())
        response.headers["Cache-Control"] = "no-store"
        return response

    def admin_block(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        """PUT /admin/blocks/{block}: refuse a block's sends by hand (optional `seconds`)."""
        key_id = self._key_id(request)
        seconds = parse_body(request).get("seconds", "") if request.body else ""
        if seconds and not (seconds.isdigit() and 0 < int(seconds) <= 30 * 86400):
            raise InvalidRequest("'seconds' must be a whole number from 1 to 2592000.")
        blocked = self._operator_or_404().block(
            unquote(match["block"]), key_id, int(seconds) if seconds else None
        )
        return json_response(200, {"status": "success", **blocked})

    def admin_unblock(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        """DELETE /admin/blocks/{block}: lift a block (automatic or by hand)."""
        key_id = self._key_id(request)
        self._operator_or_404().unblock(unquote(match["block"]), key_id)
        return json_response(200, {"status": "success"})

    def prometheus(self, request: HttpRequest, __: re.Match[str]) -> HttpResponse:
        """GET /metrics: Prometheus text (every gunicorn worker's, see `smscode serve`), keyed."""
        self._key_id(request)
        body, content_type = metrics.render()
        return HttpResponse(200, body, {"Content-Type": content_type})

    def openapi(self, _: HttpRequest, __: re.Match[str]) -> HttpResponse:
        """GET /openapi.yaml: the OpenAPI 3.1 description of this API."""
        return HttpResponse(200, _asset_file("openapi.yaml"), {"Content-Type": "application/yaml"})

    def key_set(self, _: HttpRequest, __: re.Match[str]) -> HttpResponse:
        """GET /.well-known/jwks.json: every public key a live verification token may carry."""
        response = json_response(200, self._jwks())
        response.headers["Cache-Control"] = JWKS_CACHE_CONTROL
        return response

    def healthz(self, _: HttpRequest, __: re.Match[str]) -> HttpResponse:
        """GET /healthz: 200 when Redis answers, else 503; each provider's circuit."""
        self._health()
        return json_response(200, {"status": "ok", "providers": self._providers()})


@cache
def api() -> Api:
    """The process's HTTP API, over the configured use cases."""
    from smscode.entrypoints import twilio_verify  # it builds on this module's types

    bootstrap.logging()
    return Api(
        bootstrap.sender,
        bootstrap.verifier,
        lambda: bootstrap.store().ping(),
        lambda: get_settings().cors_origins,
        bootstrap.jwks,
        providers=bootstrap.provider_health,
        routes=twilio_verify.routes(bootstrap.verifications, get_settings),
        operator=bootstrap.operator,
        api_keys=lambda: get_settings().api_keys,
    )
