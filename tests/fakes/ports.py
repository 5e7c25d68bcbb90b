"""In-memory fakes of the service layer's ports, for the unit tests (no server, no socket).

Each is a small class that satisfies its Protocol structurally (no inheritance). The store
follows the Lua scripts in `adapters/lua/` closely enough for the use cases: resend interval
and caps, unissue, verify with attempts, burn and the daily lock, delivery leases and final
states. The Redis store itself is tested against a real Redis in tests/integration.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from smscode.domain.errors import Unavailable
from smscode.domain.messages import DeliveryMessage
from smscode.domain.outcomes import Result, Sent, Sms
from smscode.domain.policy import Rejection
from smscode.domain.pumping import BlockWatch, network_of
from smscode.service_layer.ports import (
    ClaimResult,
    FinalState,
    Lease,
    PublishError,
    Send,
    VerifyResult,
)

FINAL = ("sent", "failed", "expired", "skipped")


def _code(phone: str, purpose: str) -> str:
    """The code's key, as adapters/keys.code names it: the default purpose keeps the old key."""
    return f"code:{phone}" if purpose == "login" else f"code:{phone}:{purpose}"


class Clock:
    """A settable clock, in seconds since the epoch (like time.time)."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


@dataclass
class _Entry:
    """A value with an optional expiry time, as a Redis key with a TTL."""

    value: Any
    expires: float | None = None


@dataclass
class FakeStore:
    """The CodeStore port as dicts; `down = True` makes every call raise Unavailable."""

    clock: Clock = field(default_factory=Clock)
    down: bool = False
    _keys: dict[str, _Entry] = field(default_factory=dict)
    # pumping, as lib_pumping.lua keeps it: (time, "s" or "v", client network, counted for
    # the whole block) per block; blocked until, by block and by (block, network)
    _window: dict[str, list[tuple[float, str, str, bool]]] = field(default_factory=dict)
    _blocked: dict[str, float] = field(default_factory=dict)
    _net_blocked: dict[tuple[str, str], float] = field(default_factory=dict)

    # -- a tiny keyspace with TTLs ---------------------------------------------------------

    def get(self, key: str) -> Any:
        """The live value at `key`, or None (expired keys are gone)."""
        entry = self._keys.get(key)
        if entry is not None and entry.expires is not None and entry.expires <= self.clock():
            del self._keys[key]
            return None
        return None if entry is None else entry.value

    def _set(self, key: str, value: Any, ttl: float | None = None) -> None:
        self._keys[key] = _Entry(value, None if ttl is None else self.clock() + ttl)

    def _wait(self, key: str) -> int:
        entry = self._keys[key]
        if entry.expires is None:
            return 1
        return math.ceil(entry.expires - self.clock())

    def _incr(self, key: str, window: int) -> int:
        if self.get(key) is None:
            self._set(key, 0, window)
        self._keys[key].value += 1
        return int(self._keys[key].value)

    def _check(self) -> None:
        if self.down:
            raise Unavailable("The code store is unavailable; please try again shortly.")

    @staticmethod
    def _caps(phone: str, ip: str) -> list[tuple[str, str, int]]:
        prefix = phone.removeprefix("+86")[:7]
        return [
            (f"daily:{phone}", "phone_daily", 86400),
            (f"ip:{ip}", "ip_hourly", 3600),
            (f"prefix:{prefix}", "prefix_hourly", 3600),
            ("global", "global_minute", 60),
        ]

    # -- the port ---------------------------------------------------------------------------

    def issue(self, send: Send) -> Rejection | None:
        """issue.lua: every cap checked before anything is written; caps count per phone."""
        self._check()
        phone, ip, limits, pumping = send.phone, send.ip, send.limits, send.pumping
        if self.get(f"resend:{phone}") is not None:
            return Rejection("resend_interval", self._wait(f"resend:{phone}"))
        network = network_of(ip)
        if not pumping.exempt and (refused := self._judge(pumping, network)) is not None:
            return refused
        for key, reason, _ in self._caps(phone, ip):
            if (self.get(key) or 0) >= getattr(limits, reason):
                return Rejection(reason, self._wait(key))
        for key, _, window in self._caps(phone, ip):
            self._incr(key, window)
        code_key = _code(phone, send.purpose)
        self._store_code(
            code_key, send.masked, send.code_hash, send.message_id, send.request_id,
            limits.code_ttl,
        )  # fmt: skip
        if limits.resend_interval > 0:
            self._set(f"resend:{phone}", send.message_id, limits.resend_interval)
        self.requests(send.request_id)["state"] = "queued"
        if not pumping.exempt:
            counted = (
                self._seen(pumping, "s", network, counted_only=True) < pumping.rule.per_network
            )
            self._window.setdefault(pumping.block, []).append((self.clock(), "s", network, counted))
            self.get(code_key).update(net=network, counted=counted)
        return None

    def _seen(
        self, watch: BlockWatch, kind: str, network: str | None = None, counted_only: bool = False
    ) -> int:
        """Sends or verified in the block's window: all counted ones, or one network's."""
        since = self.clock() - watch.rule.window_seconds
        return sum(
            1
            for at, what, net, counted in self._window.get(watch.block, [])
            if at > since and what == kind and (network is None or net == network)
            and (counted or not counted_only)
        )  # fmt: skip

    def _judge(self, watch: BlockWatch, network: str) -> Rejection | None:
        """The block's or the network's refusal, if either converts too little (issue.lua)."""
        now, rule = self.clock(), watch.rule
        for until in (
            self._blocked.get(watch.block, 0),
            self._net_blocked.get((watch.block, network), 0),
        ):
            if until > now:
                scope = None if until == self._blocked.get(watch.block, 0) else network
                return Rejection("fraud_suspected", math.ceil(until - now), network=scope)
        for scope in (None, network):
            sends = self._seen(watch, "s", scope, counted_only=scope is None)
            verified = self._seen(watch, "v", scope, counted_only=scope is None)
            if sends >= rule.min_sends and verified < rule.min_conversion * sends:
                if scope is None:
                    self._blocked[watch.block] = now + rule.block_seconds
                else:
                    self._net_blocked[watch.block, scope] = now + rule.block_seconds
                return Rejection(
                    "fraud_suspected", rule.block_seconds, new_block=(sends, verified),
                    network=scope,
                )  # fmt: skip
        return None

    def _store_code(
        self, key: str, masked: str, code_hash: str, message_id: str, request_id: str, ttl: int
    ) -> None:
        self._set(key, {"h": code_hash, "mid": message_id, "rid": request_id, "n": 0}, ttl)
        self._set(f"request:{request_id}", {"phone": masked, "mid": message_id}, ttl)

    def issue_test_phone(
        self,
        *,
        phone: str,
        masked: str,
        code_hash: str,
        message_id: str,
        request_id: str,
        ttl: int,
        purpose: str = "login",
    ) -> None:
        """issue_test_phone.lua: no cap checked or counted, the request marked skipped."""
        self._check()
        self._store_code(_code(phone, purpose), masked, code_hash, message_id, request_id, ttl)
        self.requests(request_id)["state"] = "skipped"

    def unissue(self, send: Send) -> bool:
        """unissue.lua: only what this message wrote is undone."""
        self._check()
        phone, ip, pumping, message_id = send.phone, send.ip, send.pumping, send.message_id
        code = self.get(_code(phone, send.purpose))
        if code is None or code["mid"] != message_id:
            return False
        if not pumping.exempt:
            self._window[pumping.block].remove(next(
                e for e in reversed(self._window[pumping.block]) if e[1] == "s"
                and e[2] == network_of(ip)
            ))  # fmt: skip
        del self._keys[_code(phone, send.purpose)]
        if self.get(f"resend:{phone}") == message_id:
            del self._keys[f"resend:{phone}"]
        for key, _, _ in self._caps(phone, ip):
            if (self.get(key) or 0) > 0:
                self._keys[key].value -= 1
        self._keys.pop(f"request:{send.request_id}", None)
        return True

    def verify(
        self,
        *,
        phone: str,
        candidate_hash: str,
        max_attempts: int,
        daily_failures: int,
        pumping: BlockWatch,
        client: str,
        client_failures: int,
        purpose: str = "login",
    ) -> VerifyResult:
        """verify.lua: compare, count, consume or burn the code for this purpose; failures
        cost the client, and the phone only with a live code."""
        self._check()
        asked = f"verify_client:{client}"
        if (self.get(asked) or 0) >= client_failures:
            return ("throttled", self._wait(asked))
        key = _code(phone, purpose)
        code = self.get(key)
        if code is None:
            self._incr(asked, 3600)
            return ("none", None)
        failures = f"verify_failures:{phone}"
        if (self.get(failures) or 0) >= daily_failures:
            self._incr(asked, 3600)
            return ("locked", None)
        if code["h"] == candidate_hash:
            del self._keys[key]
            if pumping.mode == "judge" and "net" in code:
                entry = (self.clock(), "v", code["net"], code["counted"])
                self._window.setdefault(pumping.block, []).append(entry)
            return ("ok", code["rid"])
        self._incr(failures, 86400)
        self._incr(asked, 3600)
        code["n"] += 1
        left = max_attempts - code["n"]
        if left <= 0:
            del self._keys[key]
            return ("burned", None)
        return ("invalid", left)

    def claim(
        self,
        *,
        phone: str,
        request_id: str,
        message_id: str,
        token: str,
        lease_ms: int,
        providers: Sequence[str],
        pin_to: str | None,
        pin_ttl: int,
        purpose: str = "login",
    ) -> ClaimResult:
        """claim.lua: final states win, then staleness, then the pin, then the lease."""
        self._check()
        request = self.get(f"request:{request_id}")
        state = None if request is None else request.get("state")
        if state in FINAL:
            return state  # type: ignore[no-any-return]
        code = self.get(_code(phone, purpose))
        if code is None or code["mid"] != message_id:
            if request is not None:
                request["state"] = "skipped"
            return "skipped"
        pin = self.get(f"pin:{message_id}")
        if pin is not None and pin not in providers:
            return "elsewhere"
        if self.get(f"lease:{message_id}") is not None:
            return "busy"
        self._set(f"lease:{message_id}", token, lease_ms / 1000)
        if pin_to and pin is None:
            self._set(f"pin:{message_id}", pin_to, pin_ttl)
        return "go"

    def finish(
        self,
        *,
        request_id: str,
        message_id: str,
        state: FinalState | None,
        token: str = "",
        sid: str = "",
        ttl: int = 300,
        masked: str = "",
        recheck_ms: int = 60_000,
        provider: str = "",
    ) -> str | None:
        """finish.lua: a final state is recorded unless 'sent' is, and drops the pin; an
        attempt records one other than 'sent' only while its token holds the lease, which it
        then releases."""
        self._check()
        request = self.get(f"request:{request_id}")
        current = None if request is None else request.get("state")
        ours = not token or self.get(f"lease:{message_id}") == token
        if state is not None and current != "sent" and (ours or state == "sent"):
            if request is None:
                self._set(f"request:{request_id}", {"phone": masked}, ttl)
                request = self.get(f"request:{request_id}")
            request |= {"state": state, "sid": sid}
            if provider:
                request["provider"] = provider
            current = state
        if current in FINAL:
            self._keys.pop(f"pin:{message_id}", None)
        if token and ours:
            del self._keys[f"lease:{message_id}"]
        return current

    def request_state(self, request_id: str) -> dict[str, str]:
        """The request's hash, {} when unknown or expired."""
        self._check()
        return dict(self.get(f"request:{request_id}") or {})

    # -- for the tests ----------------------------------------------------------------------

    def requests(self, request_id: str) -> dict[str, Any]:
        """The live request hash (created empty if missing), to read or arrange."""
        found = self.get(f"request:{request_id}")
        if found is None:
            self._set(f"request:{request_id}", {})
            found = self.get(f"request:{request_id}")
        return found  # type: ignore[no-any-return]

    def lease(self, message_id: str) -> str | None:
        """The token holding the message's delivery lease, if any."""
        return self.get(f"lease:{message_id}")  # type: ignore[no-any-return]


class FakePublisher:
    """Records each published message; `failing = True` makes publish raise PublishError."""

    def __init__(self) -> None:
        self.messages: list[DeliveryMessage] = []
        self.failing = False

    def publish(self, message: DeliveryMessage) -> None:
        if self.failing:
            raise PublishError("broker unavailable: ConnectionRefusedError")
        self.messages.append(message)


class FakeProvider:
    """Answers each send with the next scripted Result (Sent when none is left); keeps the SMS."""

    def __init__(self, *results: Result) -> None:
        self.script = list(results)
        self.sent: list[Sms] = []
        self.leases: list[Lease] = []

    def send(self, sms: Sms, lease: Lease) -> Result:
        self.leases.append(lease)
        self.sent.append(sms)
        if self.script:
            return self.script.pop(0)
        return Sent(sid=f"fake-{len(self.sent)}", status_code="000000", provider="fake")


class FakeMetrics:
    """Counts every call as (name, label)."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()

    def send_accepted(self) -> None:
        self.counts["send_accepted", ""] += 1

    def send_rejected(self, reason: str) -> None:
        self.counts["send_rejected", reason] += 1

    def verified(self, outcome: str) -> None:
        self.counts["verified", outcome] += 1

    def delivered(self, outcome: str) -> None:
        self.counts["delivered", outcome] += 1

    def permanent_failure(self, code: str) -> None:
        self.counts["permanent_failure", code] += 1

    def pumping_blocked(self, how: str) -> None:
        self.counts["pumping_blocked", how] += 1
