"""Security settings: comma lists parsed, secrets never shown, a missing CODE_SECRET refused.

The commands' own answers (--help, a start without CODE_SECRET) are in
tests/integration/test_cli_settings.py.
"""

from __future__ import annotations

import os

import pytest

from smscode.adapters.providers.ronglian import Credentials
from smscode.settings import Settings, SettingsError, load_settings

SECRET = "s3cret-code-key-0123456789abcdef"
TOKEN = "t0ken-ronglian-0123456789abcdef0"
BASE = {"REDIS_URL": "redis://127.0.0.1:1/0", "CODE_SECRET": SECRET}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith(("CODE_", "RONGLIAN_", "CORS_", "SEND_", "TRUSTED_", "SMS_")):
            monkeypatch.delenv(name)
    for name, value in BASE.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_defaults_are_the_safe_ones(env: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings.trusted_proxy_count == 0
    assert settings.send_allowed_prefixes == ("+861",)
    assert settings.cors_origins == frozenset()


def test_comma_lists_are_parsed(env: pytest.MonkeyPatch) -> None:
    env.setenv("SEND_ALLOWED_PREFIXES", " +86138, +86139 ,")
    env.setenv("CORS_ORIGINS", "https://a.example, http://localhost:3000")
    env.setenv("TRUSTED_PROXY_COUNT", "2")
    settings = load_settings()
    assert settings.send_allowed_prefixes == ("+86138", "+86139")
    assert settings.cors_origins == {"https://a.example", "http://localhost:3000"}
    assert settings.trusted_proxy_count == 2


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SEND_ALLOWED_PREFIXES", "861"),
        ("SEND_ALLOWED_PREFIXES", ","),
        ("CORS_ORIGINS", "*"),
        ("CORS_ORIGINS", "https://a.example/path"),
        ("TRUSTED_PROXY_COUNT", "-1"),
    ],
)
def test_bad_values_name_their_setting_in_one_line(
    env: pytest.MonkeyPatch, name: str, value: str
) -> None:
    env.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(name)
    assert "\n" not in message


def test_secrets_never_show_in_reprs_or_errors(env: pytest.MonkeyPatch) -> None:
    env.setenv("SMS_PROVIDER", "ronglian")
    env.setenv("RONGLIAN_ACC_ID", "acc")
    env.setenv("RONGLIAN_APP_ID", "app")
    env.setenv("RONGLIAN_ACC_TOKEN", TOKEN)
    settings = load_settings()
    for shown in (repr(settings), str(settings), settings.model_dump_json(), str(dict(settings))):
        assert SECRET not in shown
        assert TOKEN not in shown
    assert TOKEN not in repr(Credentials(acc_id="acc", acc_token=TOKEN, app_id="app"))
    # a secret too short is refused without echoing it
    env.setenv("CODE_SECRET", "short-secret")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "short-secret" not in str(caught.value)
    assert str(caught.value).startswith("CODE_SECRET")


def test_code_secret_is_required(env: pytest.MonkeyPatch) -> None:
    env.delenv("CODE_SECRET")
    with pytest.raises(SettingsError, match=r"^CODE_SECRET is required but not set$"):
        load_settings()
    assert Settings.model_fields["code_secret"].is_required()


def test_names_are_read_whatever_their_case_and_values_in_code_win(
    env: pytest.MonkeyPatch,
) -> None:
    env.setenv("trusted_proxy_count", "3")  # as pydantic-settings read it
    assert load_settings().trusted_proxy_count == 3
    assert Settings(redis_url="redis://x", code_secret=SECRET).trusted_proxy_count == 3
    given = Settings(redis_url="redis://x", code_secret=SECRET, trusted_proxy_count=1)
    assert given.trusted_proxy_count == 1
