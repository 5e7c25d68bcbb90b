"""The operator's routes, each behind an API_KEYS key: the pumping dashboard, its data, blocks
by hand, and the Prometheus metrics."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from urllib.parse import unquote

from pydantic import SecretStr

from smscode.adapters import metrics
from smscode.domain.errors import Forbidden, InvalidRequest, Unauthorized
from smscode.entrypoints.auth import authenticate, foreign_origin
from smscode.entrypoints.web import (
    HttpRequest,
    HttpResponse,
    Route,
    document,
    html_response,
    json_response,
    parse_body,
)
from smscode.service_layer.pumping import Operator


class AdminRoutes:
    """GET /admin, GET /admin/stats, PUT and DELETE /admin/blocks/{block}, GET /metrics."""

    def __init__(
        self,
        operator: Callable[[], Operator],
        api_keys: Callable[[], Mapping[str, SecretStr]],
        cors_origins: Callable[[], frozenset[str]],
    ) -> None:
        self._operator = operator
        self._api_keys = api_keys
        self._cors_origins = cors_origins

    def routes(self) -> list[Route]:
        """The route table entries."""
        return [
            (re.compile(r"/metrics"), {"GET": self.prometheus}),
            (re.compile(r"/admin"), {"GET": self.page}),
            (re.compile(r"/admin/stats"), {"GET": self.stats}),
            (
                re.compile(r"/admin/blocks/(?P<block>[^/]+)"),
                {"PUT": self.block, "DELETE": self.unblock},
            ),
        ]

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

    def page(self, request: HttpRequest, _: re.Match[str]) -> HttpResponse:
        """GET /admin: the pumping dashboard (its data comes from /admin/stats)."""
        if request.path.endswith("/"):  # its relative asset URLs need the canonical path
            return HttpResponse(308, b"", {"Location": "../admin"})
        self._key_id(request)
        return html_response(document("admin.html"), **{"Cache-Control": "no-store"})

    def stats(self, request: HttpRequest, _: re.Match[str]) -> HttpResponse:
        """GET /admin/stats: sends, verified, conversion per hour and per block; blocked blocks."""
        self._key_id(request)
        response = json_response(200, self._operator().stats())
        response.headers["Cache-Control"] = "no-store"
        return response

    def block(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        """PUT /admin/blocks/{block}: refuse a block's sends by hand (optional `seconds`)."""
        key_id = self._key_id(request)
        seconds = parse_body(request).get("seconds", "") if request.body else ""
        if seconds and not (seconds.isdigit() and 0 < int(seconds) <= 30 * 86400):
            raise InvalidRequest("'seconds' must be a whole number from 1 to 2592000.")
        blocked = self._operator().block(
            unquote(match["block"]), key_id, int(seconds) if seconds else None
        )
        return json_response(200, {"status": "success", **blocked})

    def unblock(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        """DELETE /admin/blocks/{block}: lift a block (automatic or by hand)."""
        key_id = self._key_id(request)
        self._operator().unblock(unquote(match["block"]), key_id)
        return json_response(200, {"status": "success"})

    def prometheus(self, request: HttpRequest, __: re.Match[str]) -> HttpResponse:
        """GET /metrics: Prometheus text (every gunicorn worker's, see `smscode serve`), keyed."""
        self._key_id(request)
        body, content_type = metrics.render()
        return HttpResponse(200, body, {"Content-Type": content_type})
