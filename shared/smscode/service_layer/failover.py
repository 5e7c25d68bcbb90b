"""Failover over several providers, in order, with a shared circuit breaker per provider.

One accepted send is one SMS. A send moves to the next provider only when the current one
certainly did not send it: it refused (NotSent), it refused for good (Failed, which also
opens its circuit unless it is about the number alone), or its circuit is open. Before each
call the message is pinned to the provider in Redis, fenced by the delivery lease: only the
worker whose token holds the lease may pin, and only over the pin it last saw, so a worker
whose lease lapsed mid-call cannot move a message another worker took over. The pin stays
after an ambiguous answer (MaybeSent, which re-stamps it on Redis's clock) or a worker killed
mid-call, and from then on every attempt, on any worker, goes to that provider only:
Ronglian deduplicates on `reqId`; Aliyun does not, so before resending there we look for our
`OutId` in its send records (`Route.find`), once its records had time to show the SMS.

Every call of an attempt is over by the lease's deadline, and none starts after it.
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
from smscode.service_layer.ports import Change, CircuitStore, Clock, Lease, Pin, Provider

log = logging.getLogger("smscode.failover")

# (the send, when its provider call was pinned, the deadline): Sent, None (surely not sent)
# or MaybeSent
Find = Callable[[Sms, datetime, float], Result | None]


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
        clock: Clock = time.monotonic,
    ) -> None:
        self._routes = {route.name: route for route in routes}
        self._circuits = circuits
        self._metrics = metrics
        self._lookup_delay = lookup_delay_seconds
        self._clock = clock  # the monotonic clock the lease's deadline is on

    def send(self, sms: Sms, lease: Lease) -> Result:
        """Send through the pinned provider if any, else the first listed that takes it."""
        key = sms.key or ""
        pin = self._circuits.pinned(key) if key else None
        if pin is not None:
            if pin.provider in self._routes:
                return self._again(self._routes[pin.provider], sms, lease, pin)
            # It may have sent there: another provider could make it two. Retried until the
            # code expires, in case the provider is listed again.
            log.warning("message pinned to %s, which is no longer listed", pin.provider)
            return MaybeSent(f"pinned to {pin.provider}, which is no longer listed")
        return self._first(sms, key, lease)

    def _first(self, sms: Sms, key: str, lease: Lease) -> Result:
        refusals: list[Result] = []
        # The provider this attempt pinned the message to. Its pin is dropped at the end
        # unless the last call may have sent, whatever ends the attempt (a Redis error too):
        # a stale pin would hold the message to a provider that refused it.
        pinned: str | None = None
        try:
            for route in self._routes.values():
                if self._clock() >= lease.deadline:
                    refusals.append(NotSent("no time left for another provider"))
                    break
                allowed, change = self._circuits.allow(route.name)
                self._changed(route.name, change)
                if not allowed:
                    refusals.append(NotSent(f"{route.name} circuit open"))
                    continue
                if key:
                    # from here a pin to this provider may exist (a reply lost included)
                    previous, pinned = pinned, route.name
                    if not self._circuits.pin(
                        key, route.name, token=lease.token, previous=previous
                    ):
                        pinned = previous
                        return NotSent("delivery lease lost before the call")
                result = self._call(route, sms, lease)
                if isinstance(result, Sent | MaybeSent):
                    pinned = None  # a MaybeSent keeps its pin: no other provider from now on
                    return result
                refusals.append(result)
                log.warning(
                    "%s did not send (%s: %s); next provider",
                    route.name, type(result).__name__, result.reason,
                    extra={"status_code": result.status_code},
                )  # fmt: skip
        finally:
            if pinned is not None:
                self._unpin(key, pinned, lease)
        if all(isinstance(refusal, Failed) for refusal in refusals):
            last = refusals[-1]
            return last if isinstance(last, Failed) else Failed("no provider listed")
        return NotSent("no listed provider took it: " + ", ".join(self._routes))

    def _unpin(self, key: str, provider: str, lease: Lease) -> None:
        try:  # fenced: a no-op once the lease is another worker's
            self._circuits.unpin(key, provider, token=lease.token)
        except Unavailable:
            log.warning("could not drop the pin to %s", provider)

    def _again(self, route: Route, sms: Sms, lease: Lease, pin: Pin) -> Result:
        """A later attempt at a pinned message: the same provider, never another."""
        key = sms.key or ""
        if route.find is not None:
            if pin.age < self._lookup_delay:
                return MaybeSent(f"waiting for {route.name}'s records before checking")
            found = route.find(sms, datetime.fromtimestamp(pin.at, UTC), lease.deadline)
            if found is not None:
                return found
            if self._clock() >= lease.deadline:
                return NotSent("no time left to send again after the lookup")
            self._metrics.resent_after_lookup(route.name)
            log.warning("%s shows no earlier SMS for this send; sending again", route.name)
            # the wait restarts from now; and the pin must still be this attempt's to use
            if not self._circuits.pin(key, route.name, token=lease.token, previous=route.name):
                return NotSent("delivery lease lost before the call")
        return self._call(route, sms, lease)  # which does not start once no time is left

    def _call(self, route: Route, sms: Sms, lease: Lease) -> Result:
        result = route.provider.send(sms, lease)
        if isinstance(result, MaybeSent) and sms.key:
            try:  # its records may show the SMS only some time after this answer: wait from now
                self._circuits.restamp(sms.key, route.name)
            except Unavailable:
                log.warning("could not re-stamp the pin to %s", route.name)
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
