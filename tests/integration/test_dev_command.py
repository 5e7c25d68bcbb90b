"""`smscode dev`: embedded Redis + serve + worker, a code end to end, Ctrl-C leaves nothing."""

from __future__ import annotations

import os
from pathlib import Path

import jwt
import pytest

from smscode_dev.embedded import free_port
from tests.helpers import DevCommand


@pytest.mark.slow
def test_dev_runs_the_whole_stack_and_ctrl_c_stops_it(tmp_path: Path) -> None:
    # given `smscode dev` as a newcomer runs it: no REDIS_URL, no CODE_SECRET, console provider
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "CODE_SECRET"}}
    env.update({"PORT": str(port), "SMS_PROVIDER": "console", "DELIVERY_BACKEND": "celery"})
    dev = DevCommand(tmp_path / "dev.log", env=env)
    try:
        dev.read_until(rf"open http://127\.0\.0\.1:{port}/")
        dev.read_until(r"smscode-\d+@\S+ ready")
        # when a code is asked for, then the worker prints the SMS with its code, and the
        # code verifies
        phone, verified = dev.sign_up(port)
        # with a token signed by the key dev made for this run, and published in its JWKS
        token = verified["token"]
        keys = jwt.PyJWKClient(f"http://127.0.0.1:{port}/.well-known/jwks.json")
        claims = jwt.decode(token, keys.get_signing_key_from_jwt(token).key, algorithms=["EdDSA"])
        assert claims["phone_number"] == f"+86{phone}"
        assert "PRIVATE KEY" not in dev.output()
    finally:
        dev.interrupt()
    assert dev.group_gone(), "smscode dev left processes running"
