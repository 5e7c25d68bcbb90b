"""One-time codes: drawn from `secrets`, kept at rest only as an HMAC keyed by CODE_SECRET."""

from __future__ import annotations

import hashlib
import hmac
import secrets


def generate_code(length: int) -> str:
    """A uniformly random code of `length` decimal digits (leading zeros kept)."""
    return str(secrets.randbelow(10**length)).zfill(length)


def hash_code(secret: bytes, phone: str, code: str) -> str:
    """HMAC-SHA256 of the code bound to its phone, hex; what Redis stores instead of the code.

    Binding the phone means a hash leaked for one number says nothing about another's code.
    """
    return hmac.new(secret, f"{phone}:{code}".encode(), hashlib.sha256).hexdigest()
