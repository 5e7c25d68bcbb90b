"""SMS pumping, static caps: per-IP, per-prefix and global caps hold against bulk senders."""

from __future__ import annotations

import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.helpers import fresh_phone

IP_HOURLY = 20
PREFIX_HOURLY = 30
GLOBAL_MINUTE = 100
SENDS = 1000
# Behind one trusted proxy, delivering in-process to the console.
SERVER_ENV = {
    "DELIVERY_BACKEND": "inline",
    "SMS_PROVIDER": "console",
    "TRUSTED_PROXY_COUNT": "1",
    "IP_HOURLY_LIMIT": str(IP_HOURLY),
    "PREFIX_HOURLY_LIMIT": str(PREFIX_HOURLY),
    "GLOBAL_MINUTE_LIMIT": str(GLOBAL_MINUTE),
    # the static caps alone: the conversion rule (test_pumping.py) would refuse first
    "PUMPING_MIN_CONVERSION": "0",
}


def _send(session: requests.Session, api: str, phone: str, ip: str | None = None) -> str:
    """POST /codes; answers 'accepted' or the refusal's message."""
    headers = {} if ip is None else {"X-Forwarded-For": f"6.6.6.6, {ip}"}
    answer = session.post(f"{api}/codes", json={"phone": phone}, headers=headers, timeout=10)
    if answer.status_code == 202:
        return "accepted"
    assert answer.status_code == 429, answer.text
    body = answer.json()
    assert body["error"] == "rate_limited"
    assert answer.headers["Retry-After"] == str(body["retry_after"])
    return str(body["message"])


def _distinct_phones(count: int) -> list[str]:
    phones: set[str] = set()
    while len(phones) < count:
        phones.add(fresh_phone())
    return sorted(phones)


@pytest.mark.slow
def test_one_ip_to_many_numbers_stops_at_the_ip_cap(api: str) -> None:
    # given: no X-Forwarded-For, so the socket's 127.0.0.1 is the client
    session = requests.Session()
    # when
    outcomes = Counter(_send(session, api, phone) for phone in _distinct_phones(SENDS))
    # then
    assert outcomes["accepted"] == IP_HOURLY
    assert outcomes["Too many codes were requested from this address; try again later."] == (
        SENDS - IP_HOURLY
    )


@pytest.mark.slow
def test_forged_forwarded_for_entries_do_not_dodge_the_ip_cap(api: str) -> None:
    # given: the bot writes a new address first; the trusted proxy appends the real one
    session = requests.Session()
    outcomes: Counter[int] = Counter()
    for n, phone in enumerate(_distinct_phones(100)):
        headers = {"X-Forwarded-For": f"10.9.{n}.1, 203.0.113.9"}
        answer = session.post(f"{api}/codes", json={"phone": phone}, headers=headers, timeout=10)
        outcomes[answer.status_code] += 1
    assert outcomes == {202: IP_HOURLY, 429: 100 - IP_HOURLY}


@pytest.mark.slow
def test_many_ips_to_one_prefix_stop_at_the_prefix_cap(api: str) -> None:
    # given: 1,000 numbers sharing their first seven digits, each from its own address
    suffixes = random.sample(range(10_000), SENDS)
    phones = [f"1380013{suffix:04d}" for suffix in suffixes]
    session = requests.Session()
    # when
    outcomes = Counter(
        _send(session, api, phone, ip=f"198.51.{n // 250}.{n % 250}")
        for n, phone in enumerate(phones)
    )
    # then
    assert outcomes["accepted"] == PREFIX_HOURLY
    assert (
        outcomes["Too many codes were requested for this number range; try again later."]
        == SENDS - PREFIX_HOURLY
    )


@pytest.mark.slow
def test_global_ceiling_holds_exactly_under_16_concurrent_clients(api: str) -> None:
    # given: 16 clients, every send from its own address to a random number (800 random
    # numbers share a seven-digit prefix at most a few times, far below the prefix cap)
    phones = _distinct_phones(16 * 50)

    def client(index: int) -> Counter[str]:
        session = requests.Session()
        mine = phones[index::16]
        return Counter(
            _send(session, api, phone, ip=f"100.64.{index}.{n}") for n, phone in enumerate(mine)
        )

    # when
    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = sum(pool.map(client, range(16)), Counter())
    # then
    assert outcomes["accepted"] == GLOBAL_MINUTE
    assert (
        outcomes["The service is sending too many codes right now; try again shortly."]
        == len(phones) - GLOBAL_MINUTE
    )
