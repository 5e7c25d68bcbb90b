"""The client's IP address: from the socket, or from X-Forwarded-For behind trusted proxies."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping


def client_ip(
    socket_ip: str, headers: Mapping[str, str], trusted_proxies: int | None = None
) -> str:
    """The address the per-IP send cap is counted against.

    With no trusted proxy the socket's peer is the client and X-Forwarded-For is ignored:
    anyone can write that header, so believing it would let a bot pick a fresh IP per
    request. Behind `trusted_proxies` proxies, each appends the address it saw, so the
    entry that many from the right is the first one no client could have forged. A header
    too short or holding anything but an IP address falls back to the socket's peer.

    Args:
        socket_ip: the peer of the TCP connection (API Gateway: requestContext.http.sourceIp).
        headers: the request headers, names lower-cased.
        trusted_proxies: how many proxies to trust; None reads TRUSTED_PROXY_COUNT.
    """
    if trusted_proxies is None:
        from smscode.settings import get_settings

        trusted_proxies = get_settings().trusted_proxy_count
    forwarded = headers.get("x-forwarded-for", "")
    if trusted_proxies <= 0 or not forwarded:
        return socket_ip
    entries = [entry.strip() for entry in forwarded.split(",")]
    if len(entries) < trusted_proxies:
        return socket_ip
    try:
        return str(ipaddress.ip_address(entries[-trusted_proxies]))
    except ValueError:
        return socket_ip
