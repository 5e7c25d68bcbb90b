"""Verification tokens: compact JWS (EdDSA, PyJWT) and the JWK Set that verifies them."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import Iterable
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt.algorithms import OKPAlgorithm

from smscode.service_layer.ports import Clock

ALGORITHM = "EdDSA"


def _jwk(key: Ed25519PublicKey) -> dict[str, str]:
    """The key's public JWK members (RFC 8037): kty, crv, x."""
    return OKPAlgorithm.to_jwk(key, as_dict=True)


def thumbprint(key: Ed25519PublicKey) -> str:
    """The RFC 7638 JWK thumbprint (SHA-256, base64url): the `kid` of tokens this key signs.

    The required members of an OKP key are crv, kty and x, serialised sorted and without
    whitespace (RFC 8037 section 2; its appendix A.3 is the test vector).
    """
    members = {name: _jwk(key)[name] for name in ("crv", "kty", "x")}
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


def jwks(keys: Iterable[Ed25519PublicKey]) -> dict[str, Any]:
    """A JWK Set of the public keys, each once, in the order given."""
    published: dict[str, dict[str, str]] = {}
    for key in keys:
        kid = thumbprint(key)
        published.setdefault(kid, {**_jwk(key), "alg": ALGORITHM, "use": "sig", "kid": kid})
    return {"keys": list(published.values())}


class JwtSigner:
    """The `TokenSigner` port: OpenID Connect phone claims, signed with one Ed25519 key."""

    def __init__(
        self,
        key: Ed25519PrivateKey,
        *,
        issuer: str,
        audience: str | None,
        ttl_seconds: int,
        clock: Clock = time.time,
    ) -> None:
        self._key = key
        self._kid = thumbprint(key.public_key())
        self._issuer = issuer
        self._audience = audience
        self._ttl = ttl_seconds
        self._clock = clock

    def __repr__(self) -> str:  # never the key
        return f"JwtSigner(kid={self._kid!r}, issuer={self._issuer!r})"

    def sign(self, *, phone: str, purpose: str) -> str:
        """A token saying this E.164 phone was verified just now, for this purpose."""
        now = int(self._clock())
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "sub": phone,
            "phone_number": phone,
            "phone_number_verified": True,
            "purpose": purpose,
            "iat": now,
            "exp": now + self._ttl,
            "jti": uuid.uuid4().hex,
        }
        if self._audience is not None:
            claims["aud"] = self._audience
        return jwt.encode(
            claims, self._key, algorithm=ALGORITHM, headers={"kid": self._kid, "typ": "JWT"}
        )
