"""The client's IP address: from the socket, or from X-Forwarded-For behind trusted proxies."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping

log = logging.getLogger("smscode.api")
_warned: list[bool] = []  # once per process: a header without the entry we trust


def trusted_proxy_hops() -> int:
    """How many X-Forwarded-For entries, from the right, proxies we trust wrote.

    TRUSTED_PROXY_COUNT, and on Cloud Run or Cloud Run functions (K_SERVICE set) at least 1:
    there the socket's peer is always Google's front end, which appends the address it saw
    to any X-Forwarded-For the client sent, so the rightmost entry is the client's; the
    peer alone would count every client as one. Behind an external Application Load
    Balancer in front of Cloud Run, the load balancer writes `<client>, <its own address>`
    first: set TRUSTED_PROXY_COUNT=2 there.
    """
    from smscode.settings import get_settings

    settings = get_settings()
    hops = settings.trusted_proxy_count
    return max(hops, 1) if settings.k_service else hops


def client_ip(
    socket_ip: str, headers: Mapping[str, str], trusted_proxies: int | None = None
) -> str:
    """The address the per-client caps are counted against.

    With no trusted proxy the socket's peer is the client and X-Forwarded-For is ignored:
    anyone can write that header, so believing it would let a bot pick a fresh IP per
    request. Behind `trusted_proxies` proxies, each appends the address it saw, so the
    entry that many from the right is the first one no client could have forged. A header
    too short or holding anything but an IP address falls back to the socket's peer (said
    once per process at warning: behind a proxy that is usually one address for everyone).

    Args:
        socket_ip: the peer of the TCP connection (API Gateway: requestContext.http.sourceIp,
            which is already the client's).
        headers: the request headers, names lower-cased.
        trusted_proxies: how many proxies to trust; None: `trusted_proxy_hops()`.
    """
    if trusted_proxies is None:
        trusted_proxies = trusted_proxy_hops()
    if trusted_proxies <= 0:
        return socket_ip
    entries = [entry.strip() for entry in headers.get("x-forwarded-for", "").split(",")]
    if len(entries) >= trusted_proxies:
        try:
            return str(ipaddress.ip_address(entries[-trusted_proxies]))
        except ValueError:
            pass
    if not _warned:
        _warned.append(True)
        log.warning(
            "X-Forwarded-For lacks the client entry %d proxies should have written: such "
            "requests are counted by their socket address %s",
            trusted_proxies, socket_ip,
        )  # fmt: skip
    return socket_ip
