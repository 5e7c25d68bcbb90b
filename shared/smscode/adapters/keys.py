"""Redis key names, built in one place."""

from __future__ import annotations

import ipaddress

# Every key carries the same hash tag. Redis Cluster only runs a script whose keys share a
# slot, and the send decision must touch the phone's keys and the shared per-IP, per-prefix
# and global counters in ONE script to stay atomic; one tag is the only way to allow that.
# The cost is that the codes live on one shard; a shard runs ~100k script calls/s, far above
# any SMS budget, and Cluster still brings failover.
TAG = "{smscode}"


def code(phone: str, purpose: str = "login") -> str:
    """Hash of the active code for a phone and purpose: h (HMAC), mid, rid, n (wrong tries).

    The default purpose keeps the key of releases before purposes existed, so codes issued
    and messages queued before an upgrade still verify and deliver after it.
    """
    if purpose == "login":
        return f"{TAG}:code:{phone}"
    return f"{TAG}:code:{phone}:{purpose}"


def resend(phone: str) -> str:
    """Marker that blocks another send to the phone until it expires; holds the message id."""
    return f"{TAG}:resend:{phone}"


def phone_daily(phone: str) -> str:
    """Sends to the phone in the current 24 h window."""
    return f"{TAG}:daily:{phone}"


def _client(ip: str) -> str:
    """A client as the per-client caps count it: an IPv4 address, an IPv6 /64.

    One subscriber line usually gets a whole IPv6 /64, so counting single addresses would
    hand a bot 2^64 fresh "IPs". An IPv4 address stays one client rather than its /24: in
    China most mobile users share carrier-grade NAT addresses, so a /24 would put far more
    strangers in one bucket (and let one of them throttle the rest).
    """
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:  # "::ffff:1.2.3.4" is the IPv4 client 1.2.3.4
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def ip_hourly(ip: str) -> str:
    """Sends requested from a client (IPv4 address, IPv6 /64) in the current hour window."""
    return f"{TAG}:ip:{_client(ip)}"


def verify_client_hourly(ip: str) -> str:
    """Failed verifications asked by a client (IPv4 address, IPv6 /64) in the current hour."""
    return f"{TAG}:vip:{_client(ip)}"


def verify_failures(phone: str) -> str:
    """Failed verifications for a phone across codes in the current 24 h window."""
    return f"{TAG}:vfail:{phone}"


def request(request_id: str) -> str:
    """Delivery state of one accepted send: state, phone (masked), mid, sid, updated."""
    return f"{TAG}:req:{request_id}"


def lease(message_id: str) -> str:
    """Short lease a worker holds on a message while it calls the provider."""
    return f"{TAG}:lease:{message_id}"


def outbox() -> str:
    """Queued messages not yet final, by message id, scored by when to republish them (ms)."""
    return f"{TAG}:outbox"


def outbox_messages() -> str:
    """The payloads of the messages in the outbox, by message id (codes sealed)."""
    return f"{TAG}:outbox:msgs"


def prefix_hourly(prefix: str) -> str:
    """Sends to numbers sharing the first seven national digits in the current hour window."""
    return f"{TAG}:prefix:{prefix}"


def global_minute() -> str:
    """All sends in the current minute window: the budget's last line."""
    return f"{TAG}:global"


def circuit(provider: str) -> str:
    """A provider's circuit breaker, shared by every worker: state, opened, probe, failures."""
    return f"{TAG}:circuit:{provider}"


def pin(message_id: str) -> str:
    """The provider a message is pinned to ("name:ms"): the only one it may go to from then."""
    return f"{TAG}:pin:{message_id}"


def verification(service_sid: str, phone: str) -> str:
    """A number's Twilio-compatible verification under one service: sid, status, rid, sends."""
    return f"{TAG}:verification:{service_sid}:{phone}"


def verification_sid(sid: str) -> str:
    """Which service and number a verification sid belongs to ("<service sid> <phone>")."""
    return f"{TAG}:verification:sid:{sid}"


# ---- pumping: conversion per number block, and the dashboard's hourly stats ----


def pumping_window(block: str) -> str:
    """Sends (s<bucket>) and verified (v<bucket>) of a number block, in time buckets."""
    return f"{TAG}:pump:{block}"


def pumping_blocked() -> str:
    """Blocked number blocks (zset), scored by when the block ends (ms)."""
    return f"{TAG}:pump:blocked"


def pumping_details() -> str:
    """Why each refusal: `auto:<sends>:<verified>` or `manual:<key id>` by block, and
    `network:<sends>:<verified>` by `<block> <network>` (a network refused one block)."""
    return f"{TAG}:pump:why"


def pumping_networks(block: str, epoch: int) -> str:
    """A block's sends (s:<net>), verified (v:<net>) and sends it counted (c:<net>) per client
    network, in one window-long epoch (`epoch` windows since the epoch)."""
    return f"{TAG}:pump:{block}:n:{epoch}"


def pumping_network_blocked() -> str:
    """Client networks refused one block (zset of `<block> <network>`), scored by until (ms)."""
    return f"{TAG}:pump:netblocked"


def stats_hour(hour: int) -> str:
    """One hour's counts (sends, verified, refused, delivery_<state>), kept 25 h.

    `hour` counts hours since the epoch (UTC).
    """
    return f"{TAG}:stats:{hour}"


def stats_hour_sends(hour: int) -> str:
    """One hour's accepted sends per number block (zset), kept 25 h."""
    return f"{TAG}:stats:{hour}:sends"


def stats_hour_verified(hour: int) -> str:
    """One hour's verified codes per number block (zset), kept 25 h."""
    return f"{TAG}:stats:{hour}:verified"


def stats_hour_refused(hour: int) -> str:
    """One hour's sends refused as fraud_suspected per number block (zset), kept 25 h."""
    return f"{TAG}:stats:{hour}:refused"
