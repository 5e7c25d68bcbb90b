"""API keys for the server-to-server routes: HTTP Basic `id:secret` or `Bearer id:secret`."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping
from urllib.parse import urlsplit

from pydantic import SecretStr

# Compared against when the id is unknown, so a wrong id costs the same time as a wrong secret.
_DUMMY = "x" * 32
# Methods that change nothing: a browser may send them from any page (CORS keeps the answer).
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def credentials(authorization: str) -> tuple[str, str] | None:
    """The (id, secret) an Authorization header carries, Basic or Bearer, or None."""
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "basic":
        try:
            value = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, ValueError):
            return None
    elif scheme.lower() != "bearer":
        return None
    key_id, sep, secret = value.partition(":")
    return (key_id, secret) if sep and key_id else None


def authenticate(headers: Mapping[str, str], keys: Mapping[str, SecretStr]) -> str | None:
    """The id of the API key the request proves, else None; the secret compared in constant time.

    Args:
        headers: the request headers, names lower-cased.
        keys: API_KEYS, id -> secret.
    """
    if headers.get("sec-fetch-site") == "cross-site":
        # A browser that remembers an operator's Basic key (the dashboard) would attach it
        # to another site's form post; a server-to-server client never sends this header.
        return None
    given = credentials(headers.get("authorization", ""))
    if given is None:
        return None
    key_id, secret = given
    expected = keys.get(key_id)
    wanted = expected.get_secret_value() if expected is not None else _DUMMY
    matches = hmac.compare_digest(secret.encode(), wanted.encode())
    return key_id if matches and expected is not None else None


def _authority(netloc: str) -> str:
    """host[:port] as compared: lower case, a default port dropped."""
    netloc = netloc.strip().lower()
    for default in (":80", ":443"):
        netloc = netloc.removesuffix(default)
    return netloc


def foreign_origin(method: str, headers: Mapping[str, str], allowed: frozenset[str]) -> bool:
    """Whether a browser sent this write from another site's page, keyed or not.

    A browser names the page's origin in `Origin` on every request but a GET or HEAD; a
    server-to-server client sends none, and passes. This service's own origin (the host the
    request was sent to: `Host`, or `X-Forwarded-Host` behind a proxy that rewrites it) and
    CORS_ORIGINS pass; any other, `null` included, is foreign. Another site's page can set
    neither header, and a form post needs no CORS preflight, so this is what stops it using
    an operator's remembered dashboard login (or a key it got hold of) to change anything.

    Args:
        method: the request's method.
        headers: the request headers, names lower-cased.
        allowed: CORS_ORIGINS.
    """
    origin = headers.get("origin")
    if method in SAFE_METHODS or origin is None or origin in allowed:
        return False
    own = [headers.get("host", ""), *headers.get("x-forwarded-host", "").split(",")]
    netloc = urlsplit(origin).netloc
    return not netloc or _authority(netloc) not in {_authority(host) for host in own if host}
