"""examples/backend against the real stack: a real verification passes, a forged one never does."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from smscode_dev.embedded import free_port
from smscode_dev.stack import new_signing_key
from tests.conftest import TOKEN_AUDIENCE
from tests.fakes.ronglian import FakeRonglian
from tests.helpers import Server, fresh_phone

APP = Path(__file__).resolve().parents[2] / "examples" / "backend" / "app.py"
SignUp = Callable[[str], requests.Response]


def start_backend(
    smscode: str, redis_url: str, audience: str
) -> tuple[subprocess.Popen[bytes], str]:
    """examples/backend/app.py under `flask run`, as its README says, on a free port."""
    port = free_port()
    env = {
        "SMSCODE_URL": smscode,
        "TOKEN_AUDIENCE": audience,
        # its own database: the replay markers outlive the tests' flushes of database 0
        "REDIS_URL": urlsplit(redis_url)._replace(path="/3").geturl(),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", str(APP), "run", "--port", str(port)],
        env={**env, "PATH": "/usr/bin:/bin"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(url, timeout=1)
            return process, url
        except requests.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the example backend did not start") from None
            time.sleep(0.1)


@pytest.fixture(scope="module")
def backends(token_server: Server, redis_url: str) -> Iterator[dict[str, SignUp]]:
    """The example backend of the shop the tokens are for, and of another app."""
    started = {
        name: start_backend(token_server.url, redis_url, audience)
        for name, audience in (("shop", TOKEN_AUDIENCE), ("other", "another-app"))
    }

    def sign_up_at(url: str) -> SignUp:
        return lambda token: requests.post(f"{url}/signup", data={"phone_token": token}, timeout=10)

    yield {name: sign_up_at(url) for name, (_, url) in started.items()}
    for process, _ in started.values():
        process.terminate()
        process.wait(timeout=10)


def verified_token(api: str, fake: FakeRonglian, phone: str, purpose: str = "signup") -> str:
    """send -> code (from the fake Ronglian) -> verify -> token, as the page does."""
    assert requests.post(f"{api}/codes", json={"phone": phone, "purpose": purpose}, timeout=5).ok
    [sms] = fake.wait_for(1)
    body = {"phone": phone, "code": sms.datas[0], "purpose": purpose}
    answer = requests.post(f"{api}/codes/verify", json=body, timeout=5)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["token"])


def resigned(token: str, key_pem: str, **changes: Any) -> str:
    """The token's claims changed and signed again with `key_pem`, under the same kid."""
    claims = jwt.decode(token, options={"verify_signature": False}) | changes
    key = load_pem_private_key(key_pem.encode(), password=None)
    kid = jwt.get_unverified_header(token)["kid"]
    return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid})  # type: ignore[arg-type]


def test_a_real_verification_signs_the_user_up_once(
    token_api: str, fake_ronglian: FakeRonglian, backends: dict[str, SignUp]
) -> None:
    # given
    phone = fresh_phone()
    token = verified_token(token_api, fake_ronglian, phone)
    # when
    first = backends["shop"](token)
    # then
    assert first.status_code == 201, first.text
    assert first.json() == {"ok": True, "phone": f"+86{phone}"}
    replayed = backends["shop"](token)
    assert replayed.status_code == 401
    assert replayed.json()["error"] == "replayed"


def test_forged_tampered_expired_and_misdirected_tokens_are_refused(
    token_api: str,
    fake_ronglian: FakeRonglian,
    backends: dict[str, SignUp],
    signing_key: str,
) -> None:
    # given: a real token, never presented to the shop
    phone = fresh_phone()
    token = verified_token(token_api, fake_ronglian, phone)
    header, payload, signature = token.split(".")
    someone_else = f"+86{fresh_phone()}".encode()
    other_phone = jwt.utils.base64url_encode(
        jwt.utils.base64url_decode(payload).replace(f"+86{phone}".encode(), someone_else)
    ).decode()
    cases = {
        # another phone in the payload, the signature left as it was
        "tampered": f"{header}.{other_phone}.{signature}",
        # the same claims signed by a key the JWKS does not hold, under the real kid
        "forged": resigned(token, new_signing_key()),
        # really signed by smscode's key, but past its exp
        "expired": resigned(
            token, signing_key, iat=int(time.time()) - 700, exp=int(time.time()) - 100
        ),
        # really signed, not for this app
        "wrong audience": resigned(token, signing_key, aud="another-app"),
        # an unsigned token
        "alg none": jwt.encode(
            jwt.decode(token, options={"verify_signature": False}),
            None,  # type: ignore[arg-type]  # the "none" algorithm takes no key
            algorithm="none",
            headers={"kid": jwt.get_unverified_header(token)["kid"]},
        ),
        "garbage": "not.a.token",
    }
    # when / then
    for name, bad in cases.items():
        answer = backends["shop"](bad)
        assert answer.status_code == 401, name
        assert answer.json()["ok"] is False, name
    # a real token for the shop is refused by another app, and then still accepted by the shop
    assert backends["other"](token).json()["error"] == "InvalidAudienceError"
    assert backends["shop"](token).status_code == 201


def test_a_login_token_does_not_sign_anyone_up(
    token_api: str, fake_ronglian: FakeRonglian, backends: dict[str, SignUp]
) -> None:
    token = verified_token(token_api, fake_ronglian, fresh_phone(), purpose="login")
    answer = backends["shop"](token)
    assert answer.status_code == 401
    assert answer.json()["error"] == "wrong purpose"
