"""Failover over several providers, in order, with a shared circuit breaker per provider.

One accepted send is one SMS. A send moves to the next provider only when the current one
certainly did not send it: it refused (NotSent), it refused for good (Failed, which also
opens its circuit unless it is about the number alone), or its circuit is open. Before each
call the message is pinned to the provider in Redis while the delivery lease is held; the
pin stays after an ambiguous answer (MaybeSent) or a worker killed mid-call, and from then
on every attempt, on any worker, goes to that provider only: Ronglian deduplicates on
`reqId`; Aliyun does not, so before resending there we look for our `OutId` in its send
records (`Route.find`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, Protocol

from smscode.domain.errors import Unavailable
from smscode.domain.outcomes import Failed, MaybeSent, NotSent, Result, Sent, Sms
from smscode.service_layer.ports import Change, CircuitStore, Clock, Provider

log = logging.getLogger("smscode.failover")

Find = Callable[[Sms, datetime], Result | None]


class FailoverMetrics(Protocol):
    """What failover counts."""

    def circuit_changed(self, provider: str, state: str) -> None:
        """One change of a provider's circuit, to `state`."""
        ...

    def resent_after_lookup(self, provider: str) -> None:
        """One resend after an ambiguous answer, its records showing no earlier SMS."""
        ...


@dataclass(frozen=True)
class Route:
    """A listed provider. `find` (for one that does not deduplicate) checks its records for
    an earlier SMS with the send's key: Sent if there is one, None if surely none, MaybeSent
    if it cannot tell."""

    name: str
    provider: Provider
    find: Find | None = None


class Failover:
    """A `Provider` over several: the first whose circuit allows, in order."""

    def __init__(
        self,
        routes: Sequence[Route],
        circuits: CircuitStore,
        metrics: FailoverMetrics,
        *,
        lookup_delay_seconds: float,
        clock: Clock = time.time,
    ) -> None:
        self._routes = {route.name: route for route in routes}
        self._circuits = circuits
        self._metrics = metrics
        self._lookup_delay = lookup_delay_seconds
        self._clock = clock

    def send(self, sms: Sms) -> Result:
        """Send through the pinned provider if any, else the first listed that takes it."""
        key = sms.key or ""
        pinned = self._circuits.pinned(key) if key else None
        if pinned is not None:
            name, since = pinned
            if name in self._routes:
                return self._again(self._routes[name], sms, since)
            # It may have sent there: another provider could make it two. Retried until the
            # code expires, in case the provider is listed again.
            log.warning("message pinned to %s, which is no longer listed", name)
            return MaybeSent(f"pinned to {name}, which is no longer listed")
        return self._first(sms, key)

    def _first(self, sms: Sms, key: str) -> Result:
        refusals: list[Result] = []
        for route in self._routes.values():
            allowed, change = self._circuits.allow(route.name)
            self._changed(route.name, change)
            if not allowed:
                refusals.append(NotSent(f"{route.name} circuit open"))
                continue
            if key and not self._circuits.pin(key, route.name):
                return NotSent("delivery lease lapsed before the call")
            result = self._call(route, sms)
            if isinstance(result, Sent | MaybeSent):
                return result  # a MaybeSent keeps its pin: no other provider from now on
            refusals.append(result)
            log.warning(
                "%s did not send (%s: %s); next provider",
                route.name, type(result).__name__, result.reason,
                extra={"status_code": result.status_code},
            )  # fmt: skip
        if key:
            self._circuits.unpin(key)
        if all(isinstance(refusal, Failed) for refusal in refusals):
            last = refusals[-1]
            return last if isinstance(last, Failed) else Failed("no provider listed")
        return NotSent("no listed provider took it: " + ", ".join(self._routes))

    def _again(self, route: Route, sms: Sms, since: float) -> Result:
        """A later attempt at a pinned message: the same provider, never another."""
        if route.find is not None:
            if self._clock() - since < self._lookup_delay:
                return MaybeSent(f"waiting for {route.name}'s records before checking")
            found = route.find(sms, datetime.fromtimestamp(since, UTC))
            if found is not None:
                return found
            self._metrics.resent_after_lookup(route.name)
            log.warning("%s shows no earlier SMS for this send; sending again", route.name)
            if not self._circuits.pin(sms.key or "", route.name):  # the wait restarts
                return NotSent("delivery lease lapsed before the call")
        return self._call(route, sms)

    def _call(self, route: Route, sms: Sms) -> Result:
        result = route.provider.send(sms)
        if isinstance(result, Failed) and result.for_number:
            return result  # about this number only: the provider still works for the rest
        outcome: Literal["success", "failure", "trip"] = (
            "success" if isinstance(result, Sent) else "trip" if isinstance(result, Failed)
            else "failure"
        )  # fmt: skip
        try:
            self._changed(route.name, self._circuits.record(route.name, outcome))
        except Unavailable:  # bookkeeping only: the answer itself must reach the caller
            log.warning("could not record %s's answer in its circuit", route.name)
        return result

    def _changed(self, name: str, change: Change) -> None:
        before, after = change
        if before != after:
            log.warning(
                "circuit %s: %s -> %s", name, before, after,
                extra={"provider": name, "circuit": after},
            )  # fmt: skip
            self._metrics.circuit_changed(name, after)
