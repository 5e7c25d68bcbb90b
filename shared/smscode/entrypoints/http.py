"""The HTTP API: every route module's entries in one router, over the configured use cases.

Every HTTP entry point (functions-framework's `handle`, the API Gateway handler) answers
through `api()`.
"""

from __future__ import annotations

from functools import cache

from smscode import bootstrap
from smscode.entrypoints import static, twilio_verify
from smscode.entrypoints.admin import AdminRoutes
from smscode.entrypoints.codes import CORS_PATHS, CodeRoutes
from smscode.entrypoints.web import Route, Router
from smscode.settings import get_settings


def _cors_origins() -> frozenset[str]:
    return get_settings().cors_origins


def routes() -> list[Route]:
    """Every route of the API; nothing is built or read until a request needs it."""
    codes = CodeRoutes(
        bootstrap.sender,
        bootstrap.verifier,
        lambda: bootstrap.store().ping(),
        bootstrap.jwks,
        bootstrap.provider_health,
    )
    admin = AdminRoutes(bootstrap.operator, lambda: get_settings().api_keys, _cors_origins)
    return [
        *static.routes(),
        *codes.routes(),
        *admin.routes(),
        *twilio_verify.routes(bootstrap.verifications, get_settings),
    ]


@cache
def api() -> Router:
    """The process's HTTP API."""
    bootstrap.logging()
    return Router(routes(), CORS_PATHS, _cors_origins)
