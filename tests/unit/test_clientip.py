"""The client IP: the socket's peer, unless TRUSTED_PROXY_COUNT says which X-Forwarded-For entry."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smscode.adapters import keys
from smscode.entrypoints.apigw import to_request
from smscode.entrypoints.clientip import client_ip
from smscode.settings import get_settings

SOCKET = "10.0.0.1"


@pytest.mark.parametrize(
    ("forwarded", "trusted", "expected"),
    [
        (None, 0, SOCKET),
        ("203.0.113.7", 0, SOCKET),  # no proxy trusted: the header is anyone's to forge
        ("203.0.113.7", 1, "203.0.113.7"),
        ("6.6.6.6, 203.0.113.7", 1, "203.0.113.7"),  # the client wrote 6.6.6.6 itself
        ("6.6.6.6, 203.0.113.7, 10.1.1.1", 2, "203.0.113.7"),
        ("203.0.113.7", 2, SOCKET),  # shorter than the proxy chain: malformed
        ("not-an-ip", 1, SOCKET),
        ("203.0.113.7:443", 1, SOCKET),
        ("", 1, SOCKET),
        (" , ", 1, SOCKET),
        ("2001:DB8::1", 1, "2001:db8::1"),
    ],
)
def test_forwarded_for_is_believed_only_behind_trusted_proxies(
    forwarded: str | None, trusted: int, expected: str
) -> None:
    headers = {} if forwarded is None else {"x-forwarded-for": forwarded}
    assert client_ip(SOCKET, headers, trusted) == expected


def test_ipv6_clients_are_counted_per_64_and_mapped_ipv4_as_ipv4() -> None:
    assert keys.ip_hourly("2001:db8:1:2::1") == keys.ip_hourly("2001:db8:1:2:ffff::9")
    assert keys.ip_hourly("2001:db8:1:2::1") != keys.ip_hourly("2001:db8:1:3::1")
    assert keys.ip_hourly("::ffff:203.0.113.7") == keys.ip_hourly("203.0.113.7")
    assert keys.ip_hourly("203.0.113.7") != keys.ip_hourly("203.0.113.8")


@pytest.mark.parametrize(("trusted", "expected"), [("0", "10.0.0.1"), ("1", "203.0.113.7")])
def test_the_lambda_adapter_reads_the_same_setting(
    monkeypatch: pytest.MonkeyPatch, trusted: str, expected: str
) -> None:
    # given: API Gateway's sourceIp is the peer; it appended that peer's view of the client
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("CODE_SECRET", "x" * 32)
    monkeypatch.setenv("TRUSTED_PROXY_COUNT", trusted)
    get_settings.cache_clear()
    event = {
        "requestContext": {"http": {"method": "POST", "path": "/codes", "sourceIp": "10.0.0.1"}},
        "headers": {"X-Forwarded-For": "6.6.6.6, 203.0.113.7"},
        "body": "{}",
    }
    try:
        # when
        request = to_request(event)
    finally:
        get_settings.cache_clear()
    # then
    assert request.client_ip == expected


@pytest.mark.parametrize(
    ("trusted", "forwarded", "expected"),
    [
        (None, "203.0.113.7", "203.0.113.7"),  # a client of its own: Google's entry
        (None, "6.6.6.6, 203.0.113.7", "203.0.113.7"),  # one it prepended is not believed
        (None, None, "169.254.1.1"),  # no header: the peer, said at warning
        ("0", "6.6.6.6, 203.0.113.7", "203.0.113.7"),  # 0 would be one bucket for all
        ("2", "6.6.6.6, 203.0.113.7, 34.111.1.1", "203.0.113.7"),  # behind a load balancer
    ],
)
def test_on_cloud_run_the_front_ends_entry_is_the_client(
    monkeypatch: pytest.MonkeyPatch, trusted: str | None, forwarded: str | None, expected: str
) -> None:
    # given: the environment Cloud Run gives (K_SERVICE); the socket's peer is Google's
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("CODE_SECRET", "x" * 32)
    monkeypatch.setenv("K_SERVICE", "issue-code")
    if trusted is not None:
        monkeypatch.setenv("TRUSTED_PROXY_COUNT", trusted)
    get_settings.cache_clear()
    headers = {} if forwarded is None else {"x-forwarded-for": forwarded}
    try:
        # when / then
        assert client_ip("169.254.1.1", headers) == expected
    finally:
        get_settings.cache_clear()


@given(
    st.one_of(
        st.text(max_size=60), st.lists(st.ip_addresses().map(str), max_size=4).map(", ".join)
    ),
    st.integers(min_value=0, max_value=5),
)
def test_any_header_yields_the_socket_or_an_address_the_proxies_wrote(
    forwarded: str, trusted: int
) -> None:
    chosen = client_ip(SOCKET, {"x-forwarded-for": forwarded}, trusted)
    if trusted == 0:
        assert chosen == SOCKET
        return
    entries = [entry.strip() for entry in forwarded.split(",")]
    if chosen != SOCKET:
        assert len(entries) >= trusted
        assert ipaddress.ip_address(chosen) == ipaddress.ip_address(entries[-trusted])
