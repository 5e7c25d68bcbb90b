"""Issue, deliver and verify through the real HTTP function, real worker and fake Ronglian."""

from __future__ import annotations

import redis
import requests

from tests.fakes.ronglian import FakeRonglian
from tests.helpers import fresh_phone


def send(api: str, phone: str, **fields: str) -> requests.Response:
    return requests.post(f"{api}/codes", json={"phone": phone, **fields}, timeout=5)


def verify(api: str, phone: str, code: str) -> requests.Response:
    return requests.post(f"{api}/codes/verify", json={"phone": phone, "code": code}, timeout=5)


def test_code_travels_from_post_to_ronglian_and_verifies(
    api: str, fake_ronglian: FakeRonglian
) -> None:
    # given
    phone = fresh_phone()
    # when
    answer = send(api, phone)
    # then
    assert answer.status_code == 202
    body = answer.json()
    assert body["status"] == "success"
    assert body["expires_in"] == 300
    assert body["resend_after"] == 60
    [sms] = fake_ronglian.wait_for(1)
    assert sms.to == phone
    assert sms.template_id == "1"
    assert sms.datas[1] == "5"
    assert len(sms.datas[0]) == 6
    assert sms.req_id is not None
    assert len(sms.req_id) == 32
    assert verify(api, phone, sms.datas[0]).json() == {"status": "success"}
    # single use
    assert verify(api, phone, sms.datas[0]).json()["error"] == "no_active_code"


def test_form_body_with_mobile_field_works_like_the_jquery_page(
    api: str, fake_ronglian: FakeRonglian
) -> None:
    phone = fresh_phone()
    answer = requests.post(f"{api}/codes", data={"mobile": f"+86{phone}"}, timeout=5)
    assert answer.status_code == 202
    [sms] = fake_ronglian.wait_for(1)
    assert sms.to == phone
    answer = requests.post(
        f"{api}/codes/verify", data={"mobile": phone, "code": sms.datas[0]}, timeout=5
    )
    assert answer.status_code == 200


def test_resend_inside_the_interval_is_rate_limited_with_retry_after(api: str) -> None:
    phone = fresh_phone()
    assert send(api, phone).status_code == 202
    answer = send(api, f"86{phone}")
    assert answer.status_code == 429
    body = answer.json()
    assert body["error"] == "rate_limited"
    assert 0 < body["retry_after"] <= 60
    assert answer.headers["Retry-After"] == str(body["retry_after"])
    assert set(body) == {"status", "error", "message", "retry_after"}


def test_wrong_codes_count_down_then_burn_the_code(api: str, fake_ronglian: FakeRonglian) -> None:
    phone = fresh_phone()
    send(api, phone)
    [sms] = fake_ronglian.wait_for(1)
    wrong = "0" * 6 if sms.datas[0] != "0" * 6 else "1" * 6
    lefts = [verify(api, phone, wrong).json().get("attempts_left") for _ in range(4)]
    assert lefts == [4, 3, 2, 1]
    fifth = verify(api, phone, wrong)
    assert fifth.status_code == 429
    assert fifth.json()["error"] == "too_many_attempts"
    # burned: even the right code no longer works
    assert verify(api, phone, sms.datas[0]).json()["error"] == "no_active_code"


def test_bad_input_gets_the_contract_errors(api: str) -> None:
    cases = [
        (send(api, "010 12345678"), 400, "invalid_phone"),
        (send(api, "+1 650 253 0000"), 400, "invalid_phone"),
        (send(api, "hello"), 400, "invalid_phone"),
        (
            requests.post(
                f"{api}/codes",
                data=b"{nope",
                headers={"Content-Type": "application/json"},
                timeout=5,
            ),
            400,
            "invalid_request",
        ),
        (requests.post(f"{api}/codes", json=["13800138000"], timeout=5), 400, "invalid_request"),
        (requests.post(f"{api}/codes", json={}, timeout=5), 400, "invalid_request"),
        (
            requests.post(
                f"{api}/codes", data="x", headers={"Content-Type": "text/plain"}, timeout=5
            ),
            400,
            "invalid_request",
        ),
        (
            requests.post(f"{api}/codes", json={"phone": "1" * 5000}, timeout=5),
            413,
            "payload_too_large",
        ),
        (requests.get(f"{api}/nowhere", timeout=5), 404, "not_found"),
        (requests.get(f"{api}/codes/verify", timeout=5), 405, "method_not_allowed"),
    ]
    for answer, status, error in cases:
        assert answer.status_code == status, answer.text
        body = answer.json()
        assert body["status"] == "error"
        assert body["error"] == error
        assert body["message"]


def test_status_reports_delivery_with_the_phone_masked(
    api: str, fake_ronglian: FakeRonglian
) -> None:
    phone = fresh_phone()
    request_id = send(api, phone).json()["request_id"]
    fake_ronglian.wait_for(1)
    for _ in range(50):
        state = requests.get(f"{api}/codes/{request_id}", timeout=5).json()
        if state["state"] == "sent":
            break
    assert state == {
        "status": "success",
        "request_id": request_id,
        "state": "sent",
        "phone": f"+86{phone[:3]}****{phone[-4:]}",
        "provider": "ronglian",
    }
    assert requests.get(f"{api}/codes/{'0' * 32}", timeout=5).status_code == 404


def test_page_and_health(api: str) -> None:
    page = requests.get(f"{api}/", headers={"Accept-Language": "zh-CN,zh;q=0.9"}, timeout=5)
    assert page.status_code == 200
    assert '<html lang="zh-CN"' in page.text
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert requests.get(f"{api}/assets/app.js", timeout=5).status_code == 200
    assert requests.get(f"{api}/healthz", timeout=5).json() == {
        "status": "ok",
        "providers": [{"name": "ronglian", "circuit": None}],  # one provider: no breaker
    }


def test_redis_never_holds_a_code_in_clear(
    api: str, fake_ronglian: FakeRonglian, redis_client: redis.Redis
) -> None:
    phone = fresh_phone()
    send(api, phone)
    [sms] = fake_ronglian.wait_for(1)
    for key in redis_client.keys("*"):
        kind = redis_client.type(key)
        if kind == "hash":
            values = list(redis_client.hgetall(key).values())
        elif kind == "string":
            values = [str(redis_client.get(key))]
        else:
            values = [str(v) for v in redis_client.lrange(key, 0, -1)] if kind == "list" else []
        assert all(sms.datas[0] not in str(v) for v in values), key
