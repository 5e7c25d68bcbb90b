"""On Cloud Run (K_SERVICE set) each client is its own, as Google's front end saw it.

The socket's peer there is always Google's front end, which appends the address it saw to
X-Forwarded-For: that rightmost entry is the client, whatever the client wrote before it.
"""

from __future__ import annotations

import requests

from tests.helpers import fresh_phone

IP_HOURLY = 2
SERVER_ENV = {
    "DELIVERY_BACKEND": "inline",
    "K_SERVICE": "issue-code",  # as Cloud Run and Cloud Run functions set it
    "IP_HOURLY_LIMIT": str(IP_HOURLY),
}


def send(api: str, forwarded: str) -> int:
    headers = {"X-Forwarded-For": forwarded}
    return requests.post(
        f"{api}/codes", json={"phone": fresh_phone()}, headers=headers, timeout=10
    ).status_code


def test_each_client_gets_its_own_ip_bucket_and_cannot_forge_another(api: str) -> None:
    # given: a client at its cap, each time writing a fresh address before Google's entry
    assert [send(api, f"6.6.6.{n}, 203.0.113.7") for n in range(IP_HOURLY)] == [202] * IP_HOURLY
    # then: it is refused, forged entries or not
    assert send(api, "6.6.6.99, 203.0.113.7") == 429
    # and another client, behind the same front end, is not
    assert send(api, "198.51.100.23") == 202
