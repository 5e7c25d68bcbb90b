"""The HTTP function in this process: functions-framework's test client over the real Redis.

No server and no socket for the HTTP side: `create_app` loads the same `handle` gunicorn
serves, so the route table, the Flask adapter and the error mapping run as deployed. Delivery
is inline, to the fake Ronglian.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from smscode import bootstrap
from smscode_dev.embedded import free_port
from tests.cloud_helpers import configure
from tests.conftest import function_client, stack_env
from tests.fakes.ronglian import FakeRonglian
from tests.helpers import fresh_phone

SOURCE = "shared/smscode/entrypoints/flask_app.py"


@pytest.fixture
def client(
    monkeypatch: pytest.MonkeyPatch,
    redis_url: str,
    redis_client: redis.Redis,
    fake_ronglian: FakeRonglian,
) -> Iterator[Any]:
    """The test client, this process configured to deliver inline through the fake."""
    configure(monkeypatch, stack_env(redis_url, fake_ronglian, DELIVERY_BACKEND="inline"))
    yield function_client(SOURCE, "handle")
    bootstrap.reset()


def test_send_status_and_verify(client: Any, fake_ronglian: FakeRonglian) -> None:
    # given
    phone = fresh_phone()
    # when
    sent = client.post("/codes", json={"phone": phone})
    # then
    assert sent.status_code == 202
    body = sent.get_json()
    assert (body["status"], body["expires_in"], body["resend_after"]) == ("success", 300, 60)
    [sms] = fake_ronglian.wait_for(1)
    assert sms.to == phone
    deadline = time.monotonic() + 10
    while (state := client.get(f"/codes/{body['request_id']}").get_json())["state"] != "sent":
        assert time.monotonic() < deadline, state
        time.sleep(0.05)
    assert state["phone"] == f"+86{phone[:3]}****{phone[-4:]}"
    verified = client.post("/codes/verify", json={"phone": phone, "code": sms.datas[0]})
    assert (verified.status_code, verified.get_json()) == (200, {"status": "success"})
    again = client.post("/codes/verify", json={"phone": phone, "code": sms.datas[0]})
    assert again.get_json()["error"] == "no_active_code"


def test_a_form_body_with_the_mobile_field(client: Any, fake_ronglian: FakeRonglian) -> None:
    phone = fresh_phone()
    assert client.post("/codes", data={"mobile": f"+86{phone}"}).status_code == 202
    [sms] = fake_ronglian.wait_for(1)
    answer = client.post("/codes/verify", data={"mobile": phone, "code": sms.datas[0]})
    assert answer.status_code == 200


def test_a_resend_inside_the_interval_is_429_with_retry_after(client: Any) -> None:
    phone = fresh_phone()
    assert client.post("/codes", json={"phone": phone}).status_code == 202
    answer = client.post("/codes", json={"phone": phone})
    assert answer.status_code == 429
    body = answer.get_json()
    assert body["error"] == "rate_limited"
    assert answer.headers["Retry-After"] == str(body["retry_after"])


def test_a_wrong_code_counts_down(client: Any, fake_ronglian: FakeRonglian) -> None:
    phone = fresh_phone()
    client.post("/codes", json={"phone": phone})
    [sms] = fake_ronglian.wait_for(1)
    wrong = "0" * 6 if sms.datas[0] != "0" * 6 else "1" * 6
    answer = client.post("/codes/verify", json={"phone": phone, "code": wrong})
    assert (answer.status_code, answer.get_json()["error"]) == (400, "invalid_code")
    assert answer.get_json()["attempts_left"] == 4


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "error"),
    [
        ("POST", "/codes", {"json": {"phone": "12345"}}, 400, "invalid_phone"),
        ("POST", "/codes", {"json": {}}, 400, "invalid_request"),
        (
            "POST", "/codes",
            {"data": b"{not json", "content_type": "application/json"}, 400, "invalid_request",
        ),
        ("POST", "/codes", {"json": {"phone": "1" * 5000}}, 413, "payload_too_large"),
        ("GET", f"/codes/{'0' * 32}", {}, 404, "not_found"),
        ("GET", "/nowhere", {}, 404, "not_found"),
        ("DELETE", "/codes", {}, 405, "method_not_allowed"),
        ("POST", "/codes/verify", {"json": {"phone": "13800138000"}}, 400, "invalid_request"),
    ],
)  # fmt: skip
def test_bad_requests_get_the_contracts_json_error(
    client: Any, method: str, path: str, kwargs: dict[str, Any], status: int, error: str
) -> None:
    answer = client.open(path, method=method, **kwargs)
    assert answer.status_code == status
    body = answer.get_json()
    assert (body["status"], body["error"]) == ("error", error)
    assert body["message"]
    assert "Traceback" not in answer.get_data(as_text=True)


def test_redis_down_is_503_unavailable(
    client: Any, monkeypatch: pytest.MonkeyPatch, redis_url: str, fake_ronglian: FakeRonglian
) -> None:
    down = f"redis://127.0.0.1:{free_port()}/0"
    configure(monkeypatch, stack_env(down, fake_ronglian, DELIVERY_BACKEND="inline"))
    for path, payload in (("/codes", {"phone": fresh_phone()}), ("/codes/verify", {
        "phone": fresh_phone(), "code": "123456",
    })):  # fmt: skip
        answer = client.post(path, json=payload)
        assert answer.status_code == 503
        assert answer.get_json()["error"] == "unavailable"
