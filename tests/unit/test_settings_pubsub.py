"""DELIVERY_BACKEND=pubsub: PUBSUB_TOPIC required and checked (the cold-start import check
runs a process, so it lives in tests/integration/test_pubsub_cold_start.py)."""

from __future__ import annotations

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
