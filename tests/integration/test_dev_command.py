"""`smscode dev`: embedded Redis + serve + worker, a code end to end, Ctrl-C leaves nothing."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from smscode.embedded import free_port
from tests.helpers import fresh_phone


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_dev_runs_the_whole_stack_and_ctrl_c_stops_it(tmp_path: Path) -> None:
    # given `smscode dev` as a newcomer runs it: no REDIS_URL, no CODE_SECRET, console provider
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "CODE_SECRET"}}
    env.update({"PORT": str(port), "SMS_PROVIDER": "console", "DELIVERY_BACKEND": "celery"})
    log = tmp_path / "dev.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "smscode", "dev"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def read_until(pattern: str, timeout: float = 30) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if match := re.search(pattern, log.read_text(errors="replace")):
                return match
            time.sleep(0.1)
        raise AssertionError(f"no {pattern!r} in:\n{log.read_text(errors='replace')}")

    try:
        read_until(rf"open http://127\.0\.0\.1:{port}/")
        read_until(r"celery@\S+ ready")
        phone = fresh_phone()
        # when a code is asked for
        answer = requests.post(f"http://127.0.0.1:{port}/codes", data={"mobile": phone}, timeout=5)
        assert answer.status_code == 202
        # then the worker prints the SMS with its code, and the code verifies
        code = read_until(rf"SMS to \+86{phone}: your code is (\d{{6}})")[1]
        body = {"phone": phone, "code": code}
        verified = requests.post(f"http://127.0.0.1:{port}/codes/verify", json=body, timeout=5)
        assert verified.json() == {"status": "success"}
    finally:
        # Ctrl-C reaches the whole foreground process group
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=30)
    deadline = time.monotonic() + 10
    while _group_alive(process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _group_alive(process.pid), "smscode dev left processes running"
