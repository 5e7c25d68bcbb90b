"""TEST_PHONES: fixed codes for reviewers and QA, refused unless ALLOW_TEST_PHONES=true."""

from __future__ import annotations

import json
import subprocess
import sys

import redis
import requests

from smscode.adapters import keys
from tests.conftest import stack_env
from tests.fakes.ronglian import FakeRonglian
from tests.helpers import Server, fresh_phone

TEST_PHONE = fresh_phone()
FIXED_CODE = "246810"
# The module's own server: one test phone, tight caps, delivering inline to the fake.
SERVER_ENV = {
    "DELIVERY_BACKEND": "inline",
    "TEST_PHONES": f"{TEST_PHONE}:{FIXED_CODE}",
    "ALLOW_TEST_PHONES": "true",
    "PHONE_DAILY_LIMIT": "1",
    "GLOBAL_MINUTE_LIMIT": "2",
}


def test_test_phones_without_the_explicit_allowance_stop_the_command_at_start(
    redis_url: str, fake_ronglian: FakeRonglian
) -> None:
    env = stack_env(redis_url, fake_ronglian, TEST_PHONES=f"{TEST_PHONE}:{FIXED_CODE}")
    done = subprocess.run(
        [sys.executable, "-m", "smscode", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert "TEST_PHONES" in line
    assert "ALLOW_TEST_PHONES=true" in line
    assert "Traceback" not in done.stderr


def test_a_test_phone_gets_its_fixed_code_without_sms_or_caps(
    server: Server, redis_client: redis.Redis, fake_ronglian: FakeRonglian
) -> None:
    # given: caps that a real phone hits on its second send
    url = server.url
    # when: the test phone asks more often than any cap allows
    answers = [
        requests.post(f"{url}/codes", json={"phone": TEST_PHONE}, timeout=5) for _ in range(3)
    ]
    # then: every send is accepted, nothing is counted and no SMS leaves
    assert [answer.status_code for answer in answers] == [202, 202, 202]
    assert not redis_client.exists(keys.phone_daily(f"+86{TEST_PHONE}"))
    assert not redis_client.exists(keys.global_minute())
    real = fresh_phone()
    assert requests.post(f"{url}/codes", json={"phone": real}, timeout=5).status_code == 202
    [sms] = fake_ronglian.wait_for(1)  # the real phone's SMS: the test phone's never came
    assert sms.to == real
    assert fake_ronglian.sms_to(TEST_PHONE) == []
    # and the fixed code verifies like any code, once
    verify = {"phone": TEST_PHONE, "code": FIXED_CODE}
    assert requests.post(f"{url}/codes/verify", json=verify, timeout=5).status_code == 200
    again = requests.post(f"{url}/codes/verify", json=verify, timeout=5)
    assert again.json()["error"] == "no_active_code"


def test_a_wrong_code_for_a_test_phone_is_refused_like_any_other(server: Server) -> None:
    url = server.url
    assert requests.post(f"{url}/codes", json={"phone": TEST_PHONE}, timeout=5).status_code == 202
    wrong = {"phone": TEST_PHONE, "code": "135790"}
    answer = requests.post(f"{url}/codes/verify", json=wrong, timeout=5)
    assert answer.json()["error"] == "invalid_code"


def test_a_test_phone_code_verifies_only_for_the_purpose_it_was_sent_for(
    server: Server, redis_client: redis.Redis
) -> None:
    url = server.url
    send = {"phone": TEST_PHONE, "purpose": "signup"}
    assert requests.post(f"{url}/codes", json=send, timeout=5).status_code == 202
    login = {"phone": TEST_PHONE, "code": FIXED_CODE}
    assert requests.post(f"{url}/codes/verify", json=login, timeout=5).status_code == 400
    signup = login | {"purpose": "signup"}
    assert requests.post(f"{url}/codes/verify", json=signup, timeout=5).status_code == 200


def test_the_server_warns_at_start_that_test_phones_are_active(server: Server) -> None:
    # one line from `smscode serve` at start, one from each worker process once it serves
    lines = [line for line in server.output().splitlines() if "TEST_PHONES active" in line]
    assert lines
    assert {json.loads(line)["level"] for line in lines} == {"warning"}


def test_a_test_phones_sends_and_verifies_count_nowhere_for_its_block(
    server: Server, redis_client: redis.Redis, fake_ronglian: FakeRonglian
) -> None:
    # given: the published reviewer code, sent and verified over and over
    for _ in range(5):
        sent = requests.post(f"{server.url}/codes", json={"phone": TEST_PHONE}, timeout=5)
        assert sent.status_code == 202
        body = {"phone": TEST_PHONE, "code": FIXED_CODE}
        assert requests.post(f"{server.url}/codes/verify", json=body, timeout=5).status_code == 200
    # then: its block's conversion window and the dashboard's hour know nothing of it, so it
    # can neither lift its block's conversion nor lower it
    block = TEST_PHONE[:7]
    assert not redis_client.exists(keys.pumping_window(block))
    assert not any(key.startswith("{smscode}:stats:") for key in redis_client.scan_iter())
