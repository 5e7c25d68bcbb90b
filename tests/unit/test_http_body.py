"""The body parser answers bad input with invalid_request, never a 500."""

from __future__ import annotations

import pytest

from smscode.domain.errors import InvalidRequest
from smscode.entrypoints.web import HttpRequest, parse_body


def request(body: bytes, kind: str = "application/json") -> HttpRequest:
    return HttpRequest("POST", "/codes", {"content-type": kind}, body, "127.0.0.1")


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 3000,  # nested past the interpreter's recursion limit
        b'{"phone": "+8613800138000", "code": "\\ud800"}',  # a lone surrogate
        b"\xff\xfe",
    ],
    ids=["deep-nesting", "lone-surrogate", "not-utf8"],
)
def test_bad_bodies_are_invalid_requests(body: bytes) -> None:
    with pytest.raises(InvalidRequest):
        parse_body(request(body))
