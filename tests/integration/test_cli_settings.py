"""The `smscode` commands keep secrets out of --help and refuse to start without CODE_SECRET."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SECRET = "s3cret-code-key-0123456789abcdef"
TOKEN = "t0ken-ronglian-0123456789abcdef0"


def test_help_shows_no_secret() -> None:
    env = {**os.environ, "CODE_SECRET": SECRET, "RONGLIAN_ACC_TOKEN": TOKEN}
    for argv in ([], ["serve"], ["worker"], ["dev"]):
        shown = subprocess.run(
            [sys.executable, "-m", "smscode", *argv, "--help"],
            env=env, capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        assert "usage: smscode" in shown.stdout
        assert SECRET not in shown.stdout + shown.stderr
        assert TOKEN not in shown.stdout + shown.stderr


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_starting_without_code_secret_is_refused_in_one_line(command: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CODE_SECRET"}
    env["REDIS_URL"] = "redis://127.0.0.1:1/0"
    started = subprocess.run(
        [sys.executable, "-m", "smscode", command],
        env=env, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert started.returncode == 2
    assert started.stderr == "smscode: CODE_SECRET is required but not set\n"
    assert started.stdout == ""
