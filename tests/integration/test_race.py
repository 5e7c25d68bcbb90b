"""Concurrent sends for one phone through the real server: one 202, one SMS."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.fakes.ronglian import FakeRonglian
from tests.helpers import fresh_phone


@pytest.mark.slow
def test_hundred_concurrent_sends_for_one_new_phone_give_one_code(
    api: str, fake_ronglian: FakeRonglian
) -> None:
    # given a new phone and 100 clients racing for it
    phone = fresh_phone()

    def send(_: int) -> int:
        with requests.Session() as session:
            answer = session.post(f"{api}/codes", json={"phone": phone}, timeout=10)
            return answer.status_code

    # when
    with ThreadPoolExecutor(max_workers=32) as pool:
        statuses = list(pool.map(send, range(100)))
    # then
    assert statuses.count(202) == 1
    assert statuses.count(429) == 99
    fake_ronglian.wait_for(1)
    with pytest.raises(TimeoutError):
        fake_ronglian.wait_for(2, timeout=2)
    assert len(fake_ronglian.sms_to(phone)) == 1


@pytest.mark.slow
def test_concurrent_verifies_consume_a_code_once(api: str, fake_ronglian: FakeRonglian) -> None:
    phone = fresh_phone()
    requests.post(f"{api}/codes", json={"phone": phone}, timeout=5)
    code = fake_ronglian.wait_for(1)[0].datas[0]

    def verify(_: int) -> int:
        body = {"phone": phone, "code": code}
        return requests.post(f"{api}/codes/verify", json=body, timeout=10).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(verify, range(40)))
    assert statuses.count(200) == 1
