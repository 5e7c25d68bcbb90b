"""Ed25519 keys for verification tokens, read from PEM text (settings and the token adapter)."""

from __future__ import annotations

import re

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

# One PEM block; a value may hold several, and `\n` typed literally (one-line env files) counts.
_BLOCK = re.compile(r"-----BEGIN ([A-Z ]+)-----.+?-----END \1-----", re.DOTALL)


def _blocks(text: str) -> list[tuple[str, bytes]]:
    text = text.replace("\\n", "\n")
    return [(match[1], match[0].encode()) for match in _BLOCK.finditer(text)]


def private_key(text: str) -> Ed25519PrivateKey:
    """The one Ed25519 private key in `text` (PKCS#8 PEM, unencrypted).

    Raises:
        ValueError: anything else; the message never repeats the text.
    """
    blocks = _blocks(text)
    if len(blocks) != 1 or blocks[0][0] != "PRIVATE KEY":
        raise ValueError("expected one Ed25519 private key in PEM (-----BEGIN PRIVATE KEY-----)")
    try:
        key = load_pem_private_key(blocks[0][1], password=None)
    except (ValueError, TypeError):
        raise ValueError("the PEM private key does not load (encrypted or damaged?)") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the private key is not an Ed25519 key")
    return key


def public_keys(text: str) -> list[Ed25519PublicKey]:
    """Every key in `text`: PEM public keys as they are, private keys as their public half.

    Raises:
        ValueError: a block that is not an Ed25519 key, or no block at all.
    """
    keys: list[Ed25519PublicKey] = []
    for kind, pem in _blocks(text):
        if kind == "PRIVATE KEY":
            keys.append(private_key(pem.decode()).public_key())
            continue
        try:
            key = load_pem_public_key(pem)
        except (ValueError, TypeError):
            raise ValueError("a PEM public key does not load") from None
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("a public key is not an Ed25519 key")
        keys.append(key)
    if not keys:
        raise ValueError("expected Ed25519 keys in PEM (PUBLIC KEY or PRIVATE KEY blocks)")
    return keys
