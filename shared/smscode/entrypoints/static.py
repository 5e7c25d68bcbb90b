"""The files the service serves: the demo page in the browser's language, its script and
style sheet, and the OpenAPI description."""

from __future__ import annotations

import re

from smscode.domain.errors import NotFound
from smscode.entrypoints.web import (
    HttpRequest,
    HttpResponse,
    Route,
    document,
    html_response,
    package_file,
)

_ASSET_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


def language(accept_language: str) -> str:
    """zh-CN when the browser prefers Chinese to English, else en."""
    for part in accept_language.split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh-CN"
        if tag.startswith("en"):
            return "en"
    return "en"


def page(request: HttpRequest, _: re.Match[str]) -> HttpResponse:
    """GET /: the demo sign-up page, in the browser's language."""
    lang = language(request.headers.get("accept-language", ""))
    body = document("index.html").replace(b"__LANG__", lang.encode())
    return html_response(body, Vary="Accept-Language")


def asset(_: HttpRequest, match: re.Match[str]) -> HttpResponse:
    """GET /assets/{name}: the pages' scripts and style sheets."""
    name = match["name"]
    try:
        body = package_file(f"page/{name}")
    except FileNotFoundError:
        raise NotFound(f"No asset {name}.") from None
    content_type = _ASSET_TYPES[name[name.rindex(".") :]]
    return HttpResponse(
        200, body, {"Content-Type": content_type, "X-Content-Type-Options": "nosniff"}
    )


def openapi(_: HttpRequest, __: re.Match[str]) -> HttpResponse:
    """GET /openapi.yaml: the OpenAPI 3.1 description of this API."""
    return HttpResponse(200, package_file("openapi.yaml"), {"Content-Type": "application/yaml"})


def routes() -> list[Route]:
    """The route table entries."""
    return [
        (re.compile(r"/"), {"GET": page}),
        (re.compile(r"/assets/(?P<name>[a-z]+\.(?:js|css))"), {"GET": asset}),
        (re.compile(r"/openapi\.yaml"), {"GET": openapi}),
    ]
