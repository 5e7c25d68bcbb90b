"""Token keys, claims and purposes, with no server: PEM parsing, RFC 7638 kid, the JWS itself."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import generate_private_key

from smscode.adapters import keys
from smscode.adapters.tokens import JwtSigner, jwks, thumbprint
from smscode.domain import purposes, signing_keys
from smscode.domain.errors import InvalidRequest
from smscode.domain.messages import DeliveryMessage
from smscode.settings import SettingsError, load_settings
from smscode_dev.stack import new_signing_key

# RFC 8037 appendix A.2 (the public key) and A.3 (its RFC 7638 thumbprint).
RFC8037_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
RFC8037_KID = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def public_pem(private_pem: str) -> str:
    key = signing_keys.private_key(private_pem).public_key()
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def test_kid_is_the_rfc_7638_thumbprint_of_rfc_8037s_example_key() -> None:
    key = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(RFC8037_X + "="))
    assert thumbprint(key) == RFC8037_KID
    [jwk] = jwks([key, key])["keys"]  # each key once
    assert jwk == {
        "kty": "OKP", "crv": "Ed25519", "x": RFC8037_X, "alg": "EdDSA", "use": "sig",
        "kid": RFC8037_KID,
    }  # fmt: skip


def test_published_keys_take_public_and_private_pems_and_escaped_newlines() -> None:
    first, second = new_signing_key(), new_signing_key()
    bundle = public_pem(first) + second.replace("\n", "\\n")
    found = signing_keys.public_keys(bundle)
    assert [thumbprint(key) for key in found] == [
        thumbprint(signing_keys.private_key(pem).public_key()) for pem in (first, second)
    ]


def rsa_pem() -> str:
    return (
        generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )


@pytest.mark.parametrize("name", ["TOKEN_SIGNING_KEY", "TOKEN_PUBLISHED_KEYS"])
def test_a_bad_key_stops_the_start_naming_the_setting_never_echoing_it(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:9/0")
    monkeypatch.setenv("CODE_SECRET", "x" * 32)
    for bad in ("not a key", rsa_pem(), new_signing_key()[:-40] + "-----END PRIVATE KEY-----"):
        monkeypatch.setenv(name, bad)
        with pytest.raises(SettingsError) as error:
            load_settings()
        message = str(error.value)
        assert message.startswith(f"{name} is invalid")
        assert "MII" not in message  # the base64 of a PKCS#8 key
        assert "not a key" not in message


def test_an_empty_signing_key_means_no_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:9/0")
    monkeypatch.setenv("CODE_SECRET", "x" * 32)
    monkeypatch.setenv("TOKEN_SIGNING_KEY", "")
    assert load_settings().token_signing_key is None


@pytest.mark.parametrize("audience", [None, "example-shop"])
def test_a_token_carries_the_contract_claims(audience: str | None) -> None:
    pem = new_signing_key()
    key = signing_keys.private_key(pem)
    signer = JwtSigner(key, issuer="smscode", audience=audience, ttl_seconds=600, clock=lambda: 1e9)
    token = signer.sign(phone="+8613800138000", purpose="signup")
    assert jwt.get_unverified_header(token) == {
        "alg": "EdDSA", "kid": thumbprint(key.public_key()), "typ": "JWT"
    }  # fmt: skip
    claims = jwt.decode(
        token, key.public_key(), algorithms=["EdDSA"], audience=audience,
        options={"verify_exp": False},
    )  # fmt: skip
    jti = claims.pop("jti")
    assert len(jti) == 32
    assert claims == {
        "iss": "smscode", "sub": "+8613800138000", "phone_number": "+8613800138000",
        "phone_number_verified": True, "purpose": "signup", "iat": 10**9, "exp": 10**9 + 600,
        **({"aud": audience} if audience else {}),
    }  # fmt: skip
    assert pem.split("\n")[1] not in repr(signer)


@pytest.mark.parametrize("good", ["login", "signup", "reset_password", "a", "0-9", "x" * 32])
def test_well_formed_purposes_pass(good: str) -> None:
    assert purposes.check(good) == good


@pytest.mark.parametrize("bad", ["", "Login", "x" * 33, "log in", "登录", "a\n"])
def test_malformed_purposes_are_invalid_requests(bad: str) -> None:
    with pytest.raises(InvalidRequest):
        purposes.check(bad)


def test_the_default_purpose_keeps_the_code_key_of_earlier_releases() -> None:
    assert keys.code("+8613800138000") == "{smscode}:code:+8613800138000"
    assert keys.code("+8613800138000", "login") == keys.code("+8613800138000")
    assert keys.code("+8613800138000", "signup") == "{smscode}:code:+8613800138000:signup"


def message(**changes: object) -> DeliveryMessage:
    now = datetime.now(UTC)
    return DeliveryMessage.model_validate({
        "message_id": "a" * 32, "request_id": "b" * 32, "phone": "+8613800138000",
        "sealed_code": "c2VhbGVk", "minutes": 5, "created_at": now,
        "expires_at": now + timedelta(minutes=5), **changes,
    })  # fmt: skip


def test_a_default_purpose_message_is_written_as_before_and_others_carry_it() -> None:
    assert "purpose" not in json.loads(message().to_json())
    signup = message(purpose="signup")
    assert json.loads(signup.to_json())["purpose"] == "signup"
    assert DeliveryMessage.from_json(signup.to_json()) == signup
    assert DeliveryMessage.from_json(message().to_json()).purpose == "login"
    with pytest.raises(ValueError, match="purpose"):
        message(purpose="Not Valid")
