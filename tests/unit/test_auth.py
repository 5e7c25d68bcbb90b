"""API keys: Basic and Bearer `id:secret`, anything else refused."""

from __future__ import annotations

import base64

import pytest
from pydantic import SecretStr

from smscode.entrypoints.auth import authenticate, foreign_origin
from smscode.settings import Settings, SettingsError, load_settings

KEYS = {"ops": SecretStr("s" * 24), "app": SecretStr("a" * 30)}


def basic(pair: str) -> str:
    return "Basic " + base64.b64encode(pair.encode()).decode()


@pytest.mark.parametrize(
    ("authorization", "expected"),
    [
        (basic("ops:" + "s" * 24), "ops"),
        ("Bearer app:" + "a" * 30, "app"),
        ("bearer app:" + "a" * 30, "app"),
        (basic("ops:" + "s" * 23), None),
        (basic("nobody:" + "s" * 24), None),
        ("Bearer app", None),
        ("Basic !!!", None),
        ("Digest ops:" + "s" * 24, None),
        ("", None),
    ],
)
def test_authenticate(authorization: str, expected: str | None) -> None:
    assert authenticate({"authorization": authorization}, KEYS) == expected


def test_api_keys_setting_parses_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_KEYS", f"ops:{'s' * 24}, app:{'a' * 30}")
    settings = Settings(redis_url="redis://x", code_secret="c" * 16)
    assert {k: v.get_secret_value() for k, v in settings.api_keys.items()} == {
        "ops": "s" * 24,
        "app": "a" * 30,
    }


def test_a_short_secret_is_refused_without_echoing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://x")
    monkeypatch.setenv("CODE_SECRET", "c" * 16)
    monkeypatch.setenv("API_KEYS", "ops:tooshort-secret")
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert "API_KEYS" in str(error.value)
    assert "tooshort" not in str(error.value)


def test_a_cross_site_browser_request_is_refused_even_with_the_key() -> None:
    # another site's form posting to a keyed route with the operator's remembered key
    headers = {"authorization": basic("ops:" + "s" * 24), "sec-fetch-site": "cross-site"}
    assert authenticate(headers, KEYS) is None
    assert authenticate(headers | {"sec-fetch-site": "same-origin"}, KEYS) == "ops"


@pytest.mark.parametrize(
    ("method", "headers", "foreign"),
    [
        ("PUT", {"host": "sms.example", "origin": "https://evil.example"}, True),
        ("POST", {"host": "sms.example", "origin": "null"}, True),
        ("DELETE", {"host": "sms.example:8080", "origin": "http://sms.example"}, True),
        ("PUT", {"host": "sms.example"}, False),  # a server-to-server client: no Origin
        ("PUT", {"host": "sms.example", "origin": "https://sms.example"}, False),
        ("PUT", {"host": "SMS.example:443", "origin": "https://sms.example"}, False),
        ("PUT", {"host": "127.0.0.1:8080", "origin": "http://127.0.0.1:8080"}, False),
        ("PUT", {"host": "app:8080", "origin": "https://sms.example",
                 "x-forwarded-host": "sms.example"}, False),  # behind a proxy that rewrites Host
        ("PUT", {"host": "sms.example", "origin": "https://app.example"}, False),  # CORS_ORIGINS
        ("GET", {"host": "sms.example", "origin": "https://evil.example"}, False),  # a read
    ],
)  # fmt: skip
def test_a_write_from_another_sites_page_is_foreign(
    method: str, headers: dict[str, str], foreign: bool
) -> None:
    assert foreign_origin(method, headers, frozenset({"https://app.example"})) is foreign
