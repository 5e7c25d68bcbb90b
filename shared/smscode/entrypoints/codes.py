"""The routes an app's page and backend call: send and verify codes, a send's state, the
verification tokens' keys, and health."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from smscode.domain import purposes
from smscode.domain.errors import InvalidRequest
from smscode.entrypoints.web import HttpRequest, HttpResponse, Route, json_response, parse_body
from smscode.service_layer.send import Sender
from smscode.service_layer.verify import Verifier

# Browsers on a CORS_ORIGINS origin may call these paths (the page itself is same-origin).
CORS_PATHS = re.compile(r"/codes(?:/.*)?")
# Backends may cache the key set this long: key rotation waits at least this (docs "Tokens").
JWKS_CACHE_CONTROL = "public, max-age=300"


def _field(data: Mapping[str, str], *names: str) -> str:
    for name in names:
        if data.get(name):
            return data[name]
    raise InvalidRequest(f"The field '{names[0]}' is required.")


class CodeRoutes:
    """POST /codes, POST /codes/verify, GET /codes/{id}, the JWKS and /healthz."""

    def __init__(
        self,
        sender: Callable[[], Sender],
        verifier: Callable[[], Verifier],
        health: Callable[[], None],
        jwks: Callable[[], Mapping[str, Any]],
        providers: Callable[[], list[dict[str, str | None]]],
    ) -> None:
        self._sender = sender  # built lazily: the page and 404s need no Redis
        self._verifier = verifier
        self._health = health
        self._jwks = jwks
        self._providers = providers

    def routes(self) -> list[Route]:
        """The route table entries (verify before the request id it would match)."""
        return [
            (re.compile(r"/codes"), {"POST": self.send}),
            (re.compile(r"/codes/verify"), {"POST": self.verify}),
            (re.compile(r"/codes/(?P<request_id>[^/]+)"), {"GET": self.status}),
            (re.compile(r"/healthz"), {"GET": self.healthz}),
            (re.compile(r"/\.well-known/jwks\.json"), {"GET": self.key_set}),
        ]

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

    def key_set(self, _: HttpRequest, __: re.Match[str]) -> HttpResponse:
        """GET /.well-known/jwks.json: every public key a live verification token may carry."""
        response = json_response(200, self._jwks())
        response.headers["Cache-Control"] = JWKS_CACHE_CONTROL
        return response

    def healthz(self, _: HttpRequest, __: re.Match[str]) -> HttpResponse:
        """GET /healthz: 200 when Redis answers, else 503; each provider's circuit."""
        self._health()
        return json_response(200, {"status": "ok", "providers": self._providers()})
