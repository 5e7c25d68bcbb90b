"""SMS_PROVIDER: one provider or several in failover order, each with its required settings."""

from __future__ import annotations

import os

import pytest

from smscode.settings import SettingsError, load_settings

BASE = {"REDIS_URL": "redis://127.0.0.1:1/0", "CODE_SECRET": "s3cret-code-key-0123456789abcdef"}
RONGLIAN = {"RONGLIAN_ACC_ID": "acc", "RONGLIAN_ACC_TOKEN": "token", "RONGLIAN_APP_ID": "app"}
ALIYUN = {
    "ALIYUN_ACCESS_KEY_ID": "LTAIkey",
    "ALIYUN_ACCESS_KEY_SECRET": "aliyun-secret-never-shown",
    "ALIYUN_SIGN_NAME": "签名",
    "ALIYUN_TEMPLATE_CODE": "SMS_1",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith(("CODE_", "RONGLIAN_", "ALIYUN_", "SMS_", "CIRCUIT_")):
            monkeypatch.delenv(name)
    for name, value in BASE.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


@pytest.mark.parametrize(
    ("value", "providers"),
    [
        ("console", ("console",)),
        ("ronglian", ("ronglian",)),
        ("ronglian,aliyun", ("ronglian", "aliyun")),
        (" aliyun , ronglian ", ("aliyun", "ronglian")),
    ],
)
def test_providers_in_the_order_listed(
    env: pytest.MonkeyPatch, value: str, providers: tuple[str, ...]
) -> None:
    for name, setting in (RONGLIAN | ALIYUN).items():
        env.setenv(name, setting)
    env.setenv("SMS_PROVIDER", value)
    assert load_settings().providers == providers


def test_the_default_is_the_console_alone(env: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings.providers == ("console",)
    assert (settings.circuit_failure_threshold, settings.circuit_cooldown_seconds) == (5, 30)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("twilio", "SMS_PROVIDER is invalid: expected one of console, ronglian, aliyun"),
        ("ronglian,", "SMS_PROVIDER is invalid: expected one of console, ronglian, aliyun"),
        ("aliyun,aliyun", "SMS_PROVIDER is invalid: a provider is listed twice"),
    ],
)
def test_a_bad_list_names_the_setting_in_one_line(
    env: pytest.MonkeyPatch, value: str, message: str
) -> None:
    env.setenv("SMS_PROVIDER", value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("missing", list(ALIYUN))
def test_each_listed_provider_needs_its_settings(env: pytest.MonkeyPatch, missing: str) -> None:
    env.setenv("SMS_PROVIDER", "ronglian,aliyun")
    for name, value in (RONGLIAN | ALIYUN).items():
        if name != missing:
            env.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value) == f"invalid settings: {missing} is required when aliyun is listed"


def test_the_aliyun_secret_never_shows(env: pytest.MonkeyPatch) -> None:
    env.setenv("SMS_PROVIDER", "aliyun")
    for name, value in ALIYUN.items():
        env.setenv(name, value)
    settings = load_settings()
    assert "aliyun-secret-never-shown" not in repr(settings) + settings.model_dump_json()
