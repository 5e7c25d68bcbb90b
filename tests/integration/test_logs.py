"""Structured logs: every line is JSON, and the request id travels from HTTP to delivery."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.conftest import CODE_SECRET, stack_env
from tests.fakes.ronglian import DEFAULT_ACC_TOKEN, FakeRonglian
from tests.helpers import Server, Worker, fresh_phone, redis_db, started


@pytest.fixture(scope="module")
def own_stack(
    redis_url: str, fake_ronglian_session: FakeRonglian
) -> Iterator[tuple[Server, Worker]]:
    """A server and a worker of this module's own, so their output holds only this flow."""
    # A broker database of its own: the session's worker must not take this flow's task.
    env = stack_env(redis_url, fake_ronglian_session, CELERY_BROKER_URL=redis_db(redis_url, 14))
    server, worker = Server(env), Worker(env)
    with started(server, worker):
        yield server, worker


def entries(output: str) -> list[dict[str, Any]]:
    """Every line of a process's output, each parsed as one JSON object."""
    parsed = []
    for line in output.splitlines():
        entry = json.loads(line)  # fails the test on any line that is not JSON
        assert isinstance(entry, dict), line
        parsed.append(entry)
    return parsed


def test_one_flow_logs_json_lines_that_share_the_request_id(
    own_stack: tuple[Server, Worker], fake_ronglian: FakeRonglian
) -> None:
    # given
    server, worker = own_stack
    phone = fresh_phone()
    # when: a code is sent, delivered and verified
    answer = requests.post(f"{server.url}/codes", json={"phone": phone}, timeout=5)
    request_id = answer.json()["request_id"]
    [sms] = fake_ronglian.wait_for(1)
    code = sms.datas[0]
    verify = {"phone": phone, "code": code}
    assert requests.post(f"{server.url}/codes/verify", json=verify, timeout=5).status_code == 200
    worker.wait_for_output('"outcome": "sent"')
    # then: both outputs are JSON only, the worker's banner included
    served, delivered = entries(server.output()), entries(worker.output())
    [issued] = [entry for entry in served if entry.get("request_id") == request_id]
    assert issued["outcome"] == "accepted"
    assert issued["phone"] == f"+86{phone[:3]}****{phone[-4:]}"
    [sent] = [entry for entry in delivered if entry.get("request_id") == request_id]
    assert sent["outcome"] == "sent"
    assert sent["status_code"] == "000000"
    assert sent["phone"] == issued["phone"]
    assert any(entry.get("outcome") == "ok" for entry in served)  # the verification
    # and no line carries the code, the phone in clear or a secret
    everything = server.output() + worker.output()
    for secret in (phone, CODE_SECRET, DEFAULT_ACC_TOKEN, f'"{code}"', f" {code}"):
        assert secret not in everything
    assert "Traceback" not in everything
