"""The `CircuitStore` port on Redis: circuit breakers and provider pins, one Lua script each."""

from __future__ import annotations

from typing import Literal, cast

from smscode.adapters import keys
from smscode.adapters.redis_client import Client, load_script, now_ms, redis_errors
from smscode.service_layer.ports import Change, CircuitState, Pin


class RedisCircuits:
    """Circuits and pins in the codes' Redis, so every worker process and Lambda agrees."""

    def __init__(
        self,
        client: Client,
        *,
        threshold: int,
        window_seconds: float,
        cooldown_seconds: float,
        probe_seconds: float,
        pin_ttl_seconds: int,
    ) -> None:
        self.client = client
        self._threshold = threshold
        self._window_ms = int(window_seconds * 1000)
        self._cooldown_ms = int(cooldown_seconds * 1000)
        self._probe_ms = int(probe_seconds * 1000)
        self._pin_ttl = pin_ttl_seconds
        self._allow = load_script(client, "circuit_allow")
        self._record = load_script(client, "circuit_record")
        self._pin = load_script(client, "pin", "lib_pins")
        self._restamp = load_script(client, "pin_restamp", "lib_pins")
        self._unpin = load_script(client, "unpin", "lib_pins")
        self._pinned = load_script(client, "pinned", "lib_pins")

    def allow(self, provider: str) -> tuple[bool, Change]:
        """Whether a call may go to the provider now (a half-open circuit lets one probe)."""
        args = [now_ms(), self._cooldown_ms, self._probe_ms]
        with redis_errors():
            allowed, before, after = self._allow(keys=[keys.circuit(provider)], args=args)
        return bool(allowed), (before, after)

    def record(self, provider: str, outcome: Literal["success", "failure", "trip"]) -> Change:
        """Count what a call ended in; 'trip' opens the circuit at once."""
        args: list[str | int] = [outcome, now_ms(), self._threshold, self._window_ms]
        with redis_errors():
            before, after = self._record(keys=[keys.circuit(provider)], args=args)
        return before, after

    def states(self, providers: tuple[str, ...]) -> dict[str, CircuitState]:
        """Each provider's circuit as stored (closed when never opened)."""
        with redis_errors():
            pipe = self.client.pipeline(transaction=False)
            for provider in providers:
                pipe.hget(keys.circuit(provider), "state")
            found = pipe.execute()
        return {p: cast(CircuitState, s or "closed") for p, s in zip(providers, found, strict=True)}

    def pinned(self, key: str) -> Pin | None:
        """The message's pin, if any, its age read on Redis's clock (which stamped it)."""
        with redis_errors():
            value, now = self._pinned(keys=[keys.pin(key)])
        if not value:
            return None
        provider, _, ms = str(value).rpartition(":")
        return Pin(provider, at=int(ms) / 1000, age=(int(now) - int(ms)) / 1000)

    def pin(self, key: str, provider: str, *, token: str, previous: str | None) -> bool:
        """Pin the message to `provider` while `token` holds its lease and the pin still names
        `previous` (None: none); False otherwise (pin.lua)."""
        args: list[str | int] = [provider, token, previous or "", self._pin_ttl]
        with redis_errors():
            return bool(self._pin(keys=[keys.pin(key), keys.lease(key)], args=args))

    def restamp(self, key: str, provider: str) -> None:
        """Stamp the pin with Redis's clock now if it still names `provider` (pin_restamp.lua)."""
        with redis_errors():
            self._restamp(keys=[keys.pin(key)], args=[provider])

    def unpin(self, key: str, provider: str, *, token: str) -> None:
        """Forget the pin while `token` holds the lease and the pin names `provider` (unpin.lua)."""
        with redis_errors():
            self._unpin(keys=[keys.pin(key), keys.lease(key)], args=[token, provider])
