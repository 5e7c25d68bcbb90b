"""Verification tokens and purposes through the real HTTP function, worker and fake Ronglian."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import jwt
import pytest
import redis
import requests

from smscode.adapters import keys
from smscode.adapters.redis_client import connect
from smscode.adapters.redis_store import RedisStore
from smscode.domain.policy import Limits
from smscode.domain.pumping import BlockWatch, PumpingRule
from smscode.service_layer.ports import Send
from smscode_dev.stack import new_signing_key
from tests.conftest import TOKEN_AUDIENCE, stack_env
from tests.fakes.ronglian import FakeRonglian
from tests.helpers import Server, fresh_phone


def send(api: str, phone: str, **fields: str) -> requests.Response:
    return requests.post(f"{api}/codes", json={"phone": phone, **fields}, timeout=5)


def verify(api: str, phone: str, code: str, **fields: str) -> requests.Response:
    body = {"phone": phone, "code": code, **fields}
    return requests.post(f"{api}/codes/verify", json=body, timeout=5)


def code_for(api: str, fake: FakeRonglian, phone: str, **fields: str) -> str:
    """Send a code and read it from the fake Ronglian (the last SMS to this phone)."""
    before = len(fake.accepted)
    assert send(api, phone, **fields).status_code == 202
    return [sms for sms in fake.wait_for(before + 1) if sms.to == phone][-1].datas[0]


def check(api: str, token: str, audience: str = TOKEN_AUDIENCE) -> dict[str, Any]:
    """What a backend trusting only the JWKS does with a token."""
    keys = jwt.PyJWKClient(f"{api}/.well-known/jwks.json", cache_jwk_set=False)
    return jwt.decode(
        token,
        keys.get_signing_key_from_jwt(token).key,
        algorithms=["EdDSA"],
        issuer="smscode",
        audience=audience,
    )


def test_a_verified_code_answers_a_token_the_jwks_verifies(
    token_api: str, fake_ronglian: FakeRonglian
) -> None:
    # given
    phone = fresh_phone()
    code = code_for(token_api, fake_ronglian, phone)
    # when
    answer = verify(token_api, phone, code)
    # then
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"status", "token"}
    claims = check(token_api, body["token"])
    assert claims["sub"] == claims["phone_number"] == f"+86{phone}"
    assert claims["phone_number_verified"] is True
    assert claims["purpose"] == "login"
    assert claims["aud"] == TOKEN_AUDIENCE
    assert claims["exp"] - claims["iat"] == 600
    header = jwt.get_unverified_header(body["token"])
    assert header["alg"] == "EdDSA"
    [key] = requests.get(f"{token_api}/.well-known/jwks.json", timeout=5).json()["keys"]
    assert header["kid"] == key["kid"]


def test_jwks_lists_the_public_key_only_with_a_cache_lifetime(token_api: str) -> None:
    answer = requests.get(f"{token_api}/.well-known/jwks.json", timeout=5)
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "public, max-age=300"
    assert answer.headers["Content-Type"] == "application/json"
    [key] = answer.json()["keys"]
    assert set(key) == {"kty", "crv", "x", "alg", "use", "kid"}  # no "d": never the private half
    assert (key["kty"], key["crv"], key["alg"], key["use"]) == ("OKP", "Ed25519", "EdDSA", "sig")


def test_each_token_has_its_own_jti(token_api: str, fake_ronglian: FakeRonglian) -> None:
    tokens = []
    for _ in range(2):
        phone = fresh_phone()
        tokens.append(verify(token_api, phone, code_for(token_api, fake_ronglian, phone)))
    first, second = (check(token_api, answer.json()["token"]) for answer in tokens)
    assert first["jti"] != second["jti"]


def test_without_a_signing_key_verify_and_jwks_answer_as_before(
    api: str, fake_ronglian: FakeRonglian
) -> None:
    phone = fresh_phone()
    code = code_for(api, fake_ronglian, phone)
    assert verify(api, phone, code).json() == {"status": "success"}
    assert requests.get(f"{api}/.well-known/jwks.json", timeout=5).json() == {"keys": []}


def test_a_code_verifies_only_for_its_purpose_and_a_mismatch_leaves_it(
    token_api: str, fake_ronglian: FakeRonglian
) -> None:
    # given: a code sent for sign-up
    phone = fresh_phone()
    code = code_for(token_api, fake_ronglian, phone, purpose="signup")
    # when: it is tried for the default purpose (login), then for another one
    for purpose in ({}, {"purpose": "reset_password"}):
        wrong = verify(token_api, phone, code, **purpose)
        # then: as if there were no code at all
        assert wrong.status_code == 400
        assert wrong.json()["error"] == "no_active_code"
    # and the code still works for its own purpose, once
    answer = verify(token_api, phone, code, purpose="signup")
    assert answer.status_code == 200
    assert check(token_api, answer.json()["token"])["purpose"] == "signup"
    assert verify(token_api, phone, code, purpose="signup").json()["error"] == "no_active_code"


def test_caps_and_the_resend_interval_stay_per_phone_across_purposes(token_api: str) -> None:
    phone = fresh_phone()
    assert send(token_api, phone, purpose="signup").status_code == 202
    again = send(token_api, phone, purpose="login")
    assert again.status_code == 429
    assert again.json()["error"] == "rate_limited"


def test_an_unqueued_send_is_undone_on_its_purposes_code_only(
    redis_client: redis.Redis, redis_url: str
) -> None:
    # given: a login code and a sign-up code for one phone
    store = RedisStore(connect(redis_url))
    phone, limits = f"+86{fresh_phone()}", Limits(300, 0, 10, 10, 10, 10)
    sends, watch = {}, BlockWatch.of(phone, PumpingRule())
    for purpose in ("login", "signup"):
        sends[purpose] = Send(
            phone=phone, masked="m", ip="192.0.2.1", code_hash=purpose,
            message_id=uuid.uuid4().hex, request_id=uuid.uuid4().hex, limits=limits,
            pumping=watch, purpose=purpose,
        )  # fmt: skip
        assert store.issue(sends[purpose]) is None
    # when: the sign-up message could not be queued
    assert store.unissue(sends["signup"])
    # then: its code is gone, the login code is not
    assert not redis_client.exists(keys.code(phone, "signup"))
    assert redis_client.hget(keys.code(phone, "login"), "h") == "login"


@pytest.mark.parametrize("purpose", ["", "Login", "a" * 33, "log in", "登录", "x/y"])
def test_a_malformed_purpose_is_an_invalid_request(token_api: str, purpose: str) -> None:
    phone = fresh_phone()
    for answer in (
        send(token_api, phone, purpose=purpose),
        verify(token_api, phone, "123456", purpose=purpose),
    ):
        assert answer.status_code == 400
        assert answer.json()["error"] == "invalid_request"
        assert "purpose" in answer.json()["message"]


def test_a_purpose_in_a_form_body_works_too(token_api: str, fake_ronglian: FakeRonglian) -> None:
    phone = fresh_phone()
    assert (
        requests.post(
            f"{token_api}/codes", data={"mobile": phone, "purpose": "bind_phone"}, timeout=5
        ).status_code
        == 202
    )
    [sms] = fake_ronglian.wait_for(1)
    answer = requests.post(
        f"{token_api}/codes/verify",
        data={"mobile": phone, "code": sms.datas[0], "purpose": "bind_phone"},
        timeout=5,
    )
    assert check(token_api, answer.json()["token"])["purpose"] == "bind_phone"


def test_neither_the_key_nor_a_token_reaches_the_log(
    token_server: Server, token_api: str, fake_ronglian: FakeRonglian, signing_key: str
) -> None:
    phone = fresh_phone()
    token = verify(token_api, phone, code_for(token_api, fake_ronglian, phone)).json()["token"]
    output = token_server.output()
    assert "verification ok" in output  # the verify was logged, without what matters
    key_body = "".join(signing_key.strip().splitlines()[1:-1])
    for secret in (token, *token.split("."), key_body):
        assert secret not in output


@contextmanager
def server(redis_url: str, fake: FakeRonglian, **env: str) -> Iterator[Server]:
    env = {"SERVE_WORKERS": "1", "TOKEN_AUDIENCE": TOKEN_AUDIENCE, **env}
    started = Server(stack_env(redis_url, fake, **env)).start()
    try:
        yield started
    finally:
        started.stop()


def public_pem(private_pem: str) -> str:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return public.decode()


@pytest.mark.slow
def test_key_rotation_as_the_readme_says_breaks_no_token(
    stack: object, redis_client: redis.Redis, redis_url: str, fake_ronglian: FakeRonglian
) -> None:
    old, new = new_signing_key(), new_signing_key()

    def token(api: str) -> str:
        phone = fresh_phone()
        return str(verify(api, phone, code_for(api, fake_ronglian, phone)).json()["token"])

    def kids(api: str) -> list[str]:
        keys = requests.get(f"{api}/.well-known/jwks.json", timeout=5).json()["keys"]
        return [key["kid"] for key in keys]

    # before: the old key signs
    with server(redis_url, fake_ronglian, TOKEN_SIGNING_KEY=old) as before:
        old_token = token(before.url)
        [old_kid] = kids(before.url)
    # step 1: the next key is published (its public half) before anything is signed with it
    with server(
        redis_url, fake_ronglian, TOKEN_SIGNING_KEY=old, TOKEN_PUBLISHED_KEYS=public_pem(new)
    ) as step1:
        assert kids(step1.url)[0] == old_kid
        assert len(kids(step1.url)) == 2
        check(step1.url, old_token)
    # step 2: the new key signs; the old one stays published (as its private PEM, even)
    with server(redis_url, fake_ronglian, TOKEN_SIGNING_KEY=new, TOKEN_PUBLISHED_KEYS=old) as step2:
        new_token = token(step2.url)
        assert kids(step2.url)[1] == old_kid
        check(step2.url, old_token)  # a token of the old key still verifies
        check(step2.url, new_token)
    # step 3: once the old key's last token has expired it is dropped
    with server(redis_url, fake_ronglian, TOKEN_SIGNING_KEY=new) as step3:
        assert old_kid not in kids(step3.url)
        check(step3.url, new_token)
        with pytest.raises(jwt.PyJWKClientError):
            check(step3.url, old_token)
