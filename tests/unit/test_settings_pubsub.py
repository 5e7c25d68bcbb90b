"""DELIVERY_BACKEND=pubsub: PUBSUB_TOPIC required and checked; the library stays unimported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from smscode.settings import SettingsError, load_settings

BASE = {
    "REDIS_URL": "redis://127.0.0.1:9/0",
    "CODE_SECRET": "s3cret-code-key-0123456789abcdef",
    "DELIVERY_BACKEND": "pubsub",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("PUBSUB_TOPIC", raising=False)
    for name, value in BASE.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_pubsub_without_a_topic_is_one_line_naming_it(env: pytest.MonkeyPatch) -> None:
    with pytest.raises(SettingsError, match="PUBSUB_TOPIC is required when DELIVERY_BACKEND"):
        load_settings()


@pytest.mark.parametrize(
    "topic",
    ["sms-deliver", "projects/p/sms-deliver", "projects/p/topics/ab", "projects/P/topics/sms"],
    ids=["bare-name", "no-topics", "too-short", "upper-project"],
)
def test_a_topic_that_is_not_a_full_name_is_refused(env: pytest.MonkeyPatch, topic: str) -> None:
    env.setenv("PUBSUB_TOPIC", topic)
    with pytest.raises(SettingsError, match="PUBSUB_TOPIC is invalid: expected projects/"):
        load_settings()


def test_a_full_topic_name_is_taken(env: pytest.MonkeyPatch) -> None:
    env.setenv("PUBSUB_TOPIC", "projects/my-proj-1/topics/smscode-deliveries")
    assert load_settings().pubsub_topic == "projects/my-proj-1/topics/smscode-deliveries"


def test_the_http_function_imports_the_pubsub_client_only_when_it_first_publishes() -> None:
    # the HTTP function loaded and its send use case built, as on a cold start
    script = (
        "import sys, functions.issue_code.main\n"
        "from smscode import bootstrap\n"
        "bootstrap.sender()\n"
        "print(sorted(m for m in sys.modules if m.startswith(('google.cloud.pubsub', 'grpc'))))\n"
    )
    env = {**os.environ, **BASE, "PUBSUB_TOPIC": "projects/p-1/topics/smscode-deliveries"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).parents[2],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "[]"
