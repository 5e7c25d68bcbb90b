"""HTTP hardening: CORS allow-list, allowed destinations, security headers, the served spec."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
import yaml

from tests.conftest import ADMIN_KEY
from tests.helpers import fresh_phone

ALLOWED = "https://app.example"
SERVICE = "VA" + "0123456789abcdef" * 2
SERVER_ENV = {
    "DELIVERY_BACKEND": "inline",
    "SMS_PROVIDER": "console",
    "CORS_ORIGINS": f"{ALLOWED},http://localhost:3000",
    "SEND_ALLOWED_PREFIXES": "+86138,+86139",
    "VERIFY_SERVICE_SIDS": SERVICE,
}
CORS_HEADERS = {
    "access-control-allow-origin",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-expose-headers",
    "access-control-max-age",
}


def _cors(response: requests.Response) -> set[str]:
    return {name.lower() for name in response.headers} & CORS_HEADERS


def test_allowed_origin_gets_its_exact_origin_back(api: str) -> None:
    phone = "138" + fresh_phone()[3:]
    answer = requests.post(
        f"{api}/codes", json={"phone": phone}, headers={"Origin": ALLOWED}, timeout=5
    )
    assert answer.status_code == 202
    assert answer.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert answer.headers["Vary"] == "Origin"
    assert "Retry-After" in answer.headers["Access-Control-Expose-Headers"]
    # errors too, so the calling page can read them
    again = requests.post(
        f"{api}/codes", json={"phone": phone}, headers={"Origin": ALLOWED}, timeout=5
    )
    assert again.status_code == 429
    assert again.headers["Access-Control-Allow-Origin"] == ALLOWED


def test_preflight_from_an_allowed_origin_names_methods_and_headers(api: str) -> None:
    answer = requests.options(
        f"{api}/codes/verify",
        headers={
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
        timeout=5,
    )
    assert answer.status_code == 204
    assert answer.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert answer.headers["Access-Control-Allow-Methods"] == "POST"
    assert answer.headers["Access-Control-Allow-Headers"] == "Content-Type"
    assert answer.headers["Vary"] == "Origin"


@pytest.mark.parametrize(
    ("method", "path", "origin"),
    [
        ("POST", "/codes", "https://evil.example"),
        ("POST", "/codes", "https://app.example.evil.example"),
        ("POST", "/codes", "null"),
        ("POST", "/codes", None),
        ("OPTIONS", "/codes", "https://evil.example"),
        ("GET", "/", ALLOWED),  # the page is same-origin only
    ],
)
def test_no_cors_headers_otherwise(api: str, method: str, path: str, origin: str | None) -> None:
    headers = {"Access-Control-Request-Method": "POST"}
    if origin is not None:
        headers["Origin"] = origin
    answer = requests.request(
        method, f"{api}{path}", json={"phone": "x"}, headers=headers, timeout=5
    )
    assert not _cors(answer)
    if method == "OPTIONS":  # a refused preflight is a plain 405 in the error shape
        assert answer.status_code == 405
        assert answer.json()["error"] == "method_not_allowed"


def test_destinations_outside_the_allowed_prefixes_are_invalid_phones(api: str) -> None:
    refused = requests.post(f"{api}/codes", json={"phone": "18612345678"}, timeout=5)
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_phone"
    assert requests.post(f"{api}/codes", json={"phone": "13912345678"}, timeout=5).ok


def test_openapi_is_served_and_is_the_repository_copy(api: str) -> None:
    answer = requests.get(f"{api}/openapi.yaml", timeout=5)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/yaml"
    root = Path(__file__).resolve().parents[2] / "shared" / "smscode" / "openapi.yaml"
    assert answer.content == root.read_bytes()
    spec = yaml.safe_load(answer.text)
    assert spec["openapi"].startswith("3.1")
    assert {"/", "/codes", "/codes/verify", "/codes/{request_id}", "/openapi.yaml"} <= set(
        spec["paths"]
    )


def test_page_headers_and_json_404_405(api: str) -> None:
    page = requests.get(f"{api}/", timeout=5)
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    for method, path, status in [
        ("GET", "/nowhere", 404),
        ("GET", "/codes%0Averify", 404),  # a path werkzeug's own router refuses
        ("DELETE", "/codes", 405),
        ("PUT", "/healthz", 405),
    ]:
        answer = requests.request(method, f"{api}{path}", timeout=5)
        assert answer.status_code == status
        assert answer.headers["Content-Type"] == "application/json"
        assert set(answer.json()) == {"status", "error", "message"}


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [("https://evil.example", False), ("null", False), (ALLOWED, True), (None, True), ("", True)],
    ids=["foreign", "null", "cors-origin", "none", "own"],
)
def test_keyed_writes_from_another_sites_page_are_forbidden(
    api: str, origin: str | None, allowed: bool
) -> None:
    # given: the operator's key, as a browser that remembers the dashboard login sends it
    headers = {} if origin is None else {"Origin": origin or api}
    admin = requests.Session()
    admin.auth = ADMIN_KEY
    admin.headers.update(headers)
    phone = "+86138" + fresh_phone()[3:]
    form = {"To": phone, "Channel": "sms"}
    # when
    blocked = admin.put(f"{api}/admin/blocks/1770001", timeout=5)
    unblocked = admin.delete(f"{api}/admin/blocks/1770001", timeout=5)
    created = admin.post(f"{api}/v2/Services/{SERVICE}/Verifications", data=form, timeout=5)
    # then: the admin routes answer 403 in the contract's shape, the Twilio ones in Twilio's
    if allowed:
        assert [blocked.status_code, unblocked.status_code, created.status_code] == [200, 200, 201]
        return
    assert blocked.status_code == unblocked.status_code == 403
    assert blocked.json() == {
        "status": "error", "error": "forbidden",
        "message": "A keyed change from another site's page is refused.",
    }  # fmt: skip
    assert created.status_code == 403
    assert (created.json()["code"], created.json()["status"]) == (20403, 403)
    # and nothing changed, while reads stay readable with the key (CORS keeps their answers
    # from other sites): the block was never refused
    stats = admin.get(f"{api}/admin/stats", timeout=5)
    assert stats.status_code == 200
    assert "1770001" not in {entry["block"] for entry in stats.json()["blocked"]}
