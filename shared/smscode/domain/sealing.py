"""Codes sealed with AES-GCM for the queue, so no broker ever holds one in clear."""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_NONCE_BYTES = 12


class SealError(Exception):
    """A sealed code that does not open: wrong key, tampered, or for another message."""


class Sealer:
    """Seals and opens codes with a key derived from CODE_SECRET; the message id is bound in."""

    def __init__(self, secret: bytes) -> None:
        # A separate derived key keeps the queue cipher independent of the at-rest HMAC key.
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"smscode/seal/v1")
        self._aead = AESGCM(key.derive(secret))

    def seal(self, code: str, message_id: str) -> str:
        """The code encrypted and authenticated for this message id, base64url."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, code.encode(), message_id.encode())
        return base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, sealed: str, message_id: str) -> str:
        """The code in clear.

        Raises:
            SealError: when the sealed text was not made by this key for this message id.
        """
        try:
            raw = base64.urlsafe_b64decode(sealed.encode())
            plain = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], message_id.encode())
        except (InvalidTag, ValueError) as error:
            raise SealError("the sealed code does not open for this message") from error
        return plain.decode()
