"""`smscode dev --gcp`: the emulator pushing into the CloudEvent function, end to end; Ctrl-C
leaves nothing (the emulator's java included); a missing tool is one line, not a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from smscode_dev.embedded import free_port
from smscode_dev.gcp import ToolMissing, emulator_script, require_java
from tests.helpers import DevCommand, fresh_phone


@pytest.fixture
def gcp_tools() -> None:
    """Skip, naming what to install, where the emulator or Java is missing."""
    try:
        emulator_script()
        require_java()
    except ToolMissing as missing:
        pytest.skip(str(missing))


def closed(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.slow
@pytest.mark.usefixtures("gcp_tools")
def test_dev_gcp_runs_the_google_cloud_shape_and_ctrl_c_stops_it(tmp_path: Path) -> None:
    # given `smscode dev --gcp` as a newcomer runs it: no REDIS_URL, console provider
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "CODE_SECRET"}}
    env.update({"PORT": str(port), "SMS_PROVIDER": "console"})
    dev = DevCommand(tmp_path / "dev.log", "--gcp", env=env)
    try:
        emulator = int(dev.read_until(r"Pub/Sub emulator at 127\.0\.0\.1:(\d+)", timeout=90)[1])
        dev.read_until(rf"open http://127\.0\.0\.1:{port}/", timeout=60)
        page = requests.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert page.status_code == 200
        assert "<html" in page.text
        phone = fresh_phone()
        # when a code is asked for, as the page does
        answer = requests.post(f"http://127.0.0.1:{port}/codes", data={"mobile": phone}, timeout=10)
        assert answer.status_code == 202, answer.text
        # then the emulator pushes it to the delivery function, which prints the SMS once
        code = dev.read_until(rf"SMS to \+86{phone}: your code is (\d{{6}})")[1]
        # the console prints the SMS before the function records it: wait for the record
        status_url = f"http://127.0.0.1:{port}/codes/{answer.json()['request_id']}"
        deadline = time.monotonic() + 10
        state = requests.get(status_url, timeout=5).json()["state"]
        while state == "queued" and time.monotonic() < deadline:
            time.sleep(0.1)
            state = requests.get(status_url, timeout=5).json()["state"]
        assert state == "sent"
        body = {"phone": phone, "code": code}
        verified = requests.post(f"http://127.0.0.1:{port}/codes/verify", json=body, timeout=5)
        assert verified.json()["status"] == "success"
    finally:
        dev.interrupt()
    assert dev.group_gone(), "smscode dev --gcp left processes running"
    assert closed(emulator), "the Pub/Sub emulator still listens"
    assert dev.output().count(f"SMS to +86{phone}") == 1
    assert "Traceback" not in dev.output()


def test_dev_gcp_without_java_says_what_to_install_in_one_line(tmp_path: Path) -> None:
    # given a PATH with neither java nor gcloud, and no JAVA_HOME
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["PATH"] = str(tmp_path)
    # when
    done = subprocess.run(
        [sys.executable, "-m", "smscode", "dev", "--gcp"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # then exit 2 and one line naming what to install (Java here; or the emulator itself
    # on a machine without the SDK), nothing started
    assert done.returncode == 2
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("smscode dev --gcp: ")
    assert "install" in line
