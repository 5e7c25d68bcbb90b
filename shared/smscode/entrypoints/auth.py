"""API keys for the server-to-server routes: HTTP Basic `id:secret` or `Bearer id:secret`."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping

from pydantic import SecretStr

# Compared against when the id is unknown, so a wrong id costs the same time as a wrong secret.
_DUMMY = "x" * 32


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
