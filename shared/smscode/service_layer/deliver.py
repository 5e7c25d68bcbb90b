"""The deliver use case: one queued message to the provider, at most once, only while useful."""

from __future__ import annotations

import logging
import random
import secrets
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial

from smscode.domain.errors import Unavailable
from smscode.domain.messages import DeliveryMessage
from smscode.domain.outcomes import Failed, Outcome, Sent, Sms
from smscode.domain.phones import mask
from smscode.domain.sealing import Sealer, SealError
from smscode.service_layer.ports import Clock, CodeStore, Lease, Metrics, Provider

log = logging.getLogger("smscode.delivery")
_EXPIRED, _FAILED = {"outcome": "expired"}, {"outcome": "failed"}  # log fields


class Deliverer:
    """Delivers a message at most once to the provider's knowledge, and only while useful.

    A worker leases the message id in Redis before it calls the provider and records `sent`
    after; a redelivery of a sent message is acknowledged without a second SMS. Every call
    of the attempt is over by a deadline `budget_seconds` after the lease was asked for,
    strictly before it can lapse, so a slow call cannot overlap another worker's. If a
    worker dies between the provider's acceptance and the record, the provider's
    deduplication on the message id (Ronglian's `reqId`) turns the next attempt into a no-op.

    A message is pinned to the provider that may have sent it (by failover before each call,
    or here as the lease is taken when one provider is called directly): a worker that does
    not list that provider (another deployment on the same Redis, or one whose SMS_PROVIDER
    changed) leaves the message alone rather than send a second SMS elsewhere.
    """

    def __init__(
        self,
        store: CodeStore,
        provider: Provider,
        sealer: Sealer,
        metrics: Metrics,
        *,
        lease_seconds: float,
        budget_seconds: float,
        providers: Sequence[str],
        pin_at_claim: bool,
        recheck_seconds: float = 60,
        clock: Clock = time.time,
        monotonic: Clock = time.monotonic,
    ) -> None:
        if not 0 < budget_seconds < lease_seconds:
            raise ValueError("the calls' budget must end strictly before the lease")
        self._store = store
        self._provider = provider
        self._sealer = sealer
        self._metrics = metrics
        self._lease_ms = int(lease_seconds * 1000)
        self._budget = budget_seconds
        self._providers = tuple(providers)
        self._pin_to = self._providers[0] if pin_at_claim else None
        self._recheck_ms = int(recheck_seconds * 1000)
        self._clock = clock
        self._monotonic = monotonic

    def deliver(self, message: DeliveryMessage) -> Outcome:
        """Send the message's code unless it is already sent, stale or someone else's turn."""
        outcome = self._deliver(message)
        self._metrics.delivered(outcome.value)
        return outcome

    def _deliver(self, message: DeliveryMessage) -> Outcome:
        extra = {"request_id": message.request_id, "phone": mask(message.phone)}
        ttl = max(1, int(message.expires_at.timestamp() - message.created_at.timestamp()))
        ids = {"request_id": message.request_id, "message_id": message.message_id}
        finish = partial(
            self._store.finish,
            request_id=message.request_id,
            message_id=message.message_id,
            ttl=ttl,
            masked=extra["phone"],
            recheck_ms=self._recheck_ms,
        )
        if datetime.fromtimestamp(self._clock(), UTC) >= message.expires_at:
            log.warning("delivery expired before it could be sent", extra=extra | _EXPIRED)
            try:  # the record is a courtesy: a stale message is dropped even if Redis is down
                finish(state="expired")
            except Unavailable:
                log.warning("could not record the expiry", extra=extra | _EXPIRED)
            return Outcome.EXPIRED
        token = secrets.token_hex(8)
        # the lease starts in Redis after this instant: the deadline is strictly before its end
        lease = Lease(token, self._monotonic() + self._budget)
        claim = self._store.claim(
            phone=message.phone,
            purpose=message.purpose,
            token=token,
            lease_ms=self._lease_ms,
            providers=self._providers,
            pin_to=self._pin_to,
            pin_ttl=ttl + 60,
            **ids,
        )
        if claim == "busy":
            return Outcome.RETRY
        if claim == "elsewhere":
            # Retried until the code expires, in case that provider is listed here again.
            log.warning(
                "message pinned to a provider this worker does not list (%s); not sent",
                ",".join(self._providers), extra=extra | {"outcome": "retry"},
            )  # fmt: skip
            return Outcome.RETRY
        if claim != "go":
            log.info("delivery already %s", claim, extra=extra | {"outcome": claim})
            return Outcome.SENT if claim == "sent" else Outcome(claim)
        try:
            code = self._sealer.open(message.sealed_code, message.message_id)
        except SealError:
            finish(state="failed", token=token)
            log.error("sealed code does not open; check CODE_SECRET", extra=extra | _FAILED)
            return Outcome.FAILED
        sms = Sms(to=message.phone, code=code, minutes=message.minutes, key=message.message_id)
        result = self._provider.send(sms, lease)
        extra |= {"status_code": getattr(result, "status_code", "")}
        extra |= {"outcome": {Sent: "sent", Failed: "failed"}.get(type(result), "retry")}
        if isinstance(result, Sent):
            finish(state="sent", token=token, sid=result.sid, provider=result.provider)
            extra |= {"provider": result.provider}
            log.info("delivered%s", " (repeat of an earlier attempt)" * result.repeat, extra=extra)
            return Outcome.SENT
        if isinstance(result, Failed):
            finish(state="failed", token=token)
            self._metrics.permanent_failure(result.status_code)
            log.error("provider refused for good: %s", result.reason, extra=extra)
            return Outcome.FAILED
        finish(state=None, token=token)
        log.warning("will retry: %s (%s)", result.reason, type(result).__name__, extra=extra)
        return Outcome.RETRY


def backoff_seconds(attempt: int, *, base: float = 1.0, cap: float = 30.0) -> float:
    """Exponential backoff with full jitter (AWS architecture blog) for the `attempt`-th retry."""
    return random.uniform(0, min(cap, base * 2**attempt))
