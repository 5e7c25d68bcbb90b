"""Twilio Verify's use cases (start, fetch, cancel or approve, check) over the core's Sender.

A verification is started by issuing a code exactly as `POST /codes` does (same caps, queue
and providers) for the purpose `twilio`, which the native routes refuse, then recording that
send against the number's verification. It checks only the code it issued itself, so codes
of the native API and of this one never cross, nor those of two services.
"""

from __future__ import annotations

import logging

from smscode.domain import codes, phones, purposes
from smscode.domain.policy import Policy
from smscode.domain.pumping import BlockWatch
from smscode.domain.verifications import (
    MaxCheckAttempts,
    Status,
    Verification,
    VerificationNotFound,
    new_sid,
)
from smscode.service_layer.ports import Metrics, VerificationStore
from smscode.service_layer.send import Sender

log = logging.getLogger("smscode.service")


class Verifications:
    """Verifications per Twilio service sid, each bound to the request id it issued."""

    def __init__(
        self,
        policy: Policy,
        sender: Sender,
        store: VerificationStore,
        secret: bytes,
        metrics: Metrics,
    ) -> None:
        self._policy = policy
        self._sender = sender
        self._store = store
        self._secret = secret
        self._metrics = metrics

    def start(self, service_sid: str, raw_phone: str, client_ip: str = "") -> Verification:
        """Send a code to the number: a new verification, or another send on its pending one.

        `client_ip` is the end user's address when the caller passes it (Twilio's DeviceIp).
        The caller itself is a backend, so without it the per-address cap counts the number,
        which the per-number caps already bound, rather than throttle the whole backend.

        Raises:
            InvalidPhone, RateLimited, Unavailable.
        """
        phone = phones.normalize(raw_phone)
        issued = self._sender.issue(phone, client_ip or phone, purposes.TWILIO)
        verification = self._store.attach(
            service_sid=service_sid,
            phone=phone,
            new_sid=new_sid("VE"),
            request_id=issued.request_id,
            attempt_sid=new_sid("VL"),
            ttl=self._policy.code_ttl,
        )
        extra = {"request_id": issued.request_id, "phone": phones.mask(phone)}
        log.info("verification %s: send %d", verification.sid, len(verification.sends), extra=extra)
        return verification

    def fetch(self, service_sid: str, sid: str) -> Verification:
        """A pending verification of the service.

        Raises:
            VerificationNotFound: unknown, another service's, or no longer pending.
        """
        service_sid, phone = self._locate(service_sid, sid)
        verification = self._store.pending(service_sid, phone)
        if verification is None or verification.sid != sid:
            raise VerificationNotFound("No pending verification has this sid.")
        return verification

    def close(self, service_sid: str, sid: str, status: Status) -> Verification:
        """Cancel or approve a pending verification; its code stops working.

        Raises:
            VerificationNotFound.
        """
        service_sid, phone = self._locate(service_sid, sid)
        verification = self._store.close(
            service_sid=service_sid, phone=phone, sid=sid, status=status
        )
        if verification is None:
            raise VerificationNotFound("No pending verification has this sid.")
        log.info("verification %s: %s", sid, status, extra={"phone": phones.mask(phone)})
        return verification

    def check(
        self, service_sid: str, code: str, *, raw_phone: str = "", sid: str = ""
    ) -> Verification:
        """Check a code against the verification named by sid, else the number's pending one.

        A wrong code is an answer (status still pending), not an error, as in Twilio.

        Raises:
            InvalidPhone, VerificationNotFound, MaxCheckAttempts, Unavailable.
        """
        if sid:
            service_sid, phone = self._locate(service_sid, sid)
        else:
            phone = phones.normalize(raw_phone)
        outcome, verification = self._store.check(
            service_sid=service_sid,
            phone=phone,
            sid=sid,
            candidate_hash=codes.hash_code(self._secret, phone, code),
            max_checks=self._policy.max_verify_attempts,
            daily_failures=self._policy.verify_failures_daily,
            pumping=BlockWatch.of(
                phone, self._policy.pumping, tracked=phone not in self._policy.test_phones
            ),
        )
        self._metrics.verified(outcome)
        extra = {"phone": phones.mask(phone), "outcome": outcome}
        log.info("verification check %s", outcome, extra=extra)
        if verification is not None:
            return verification
        if outcome == "none":
            raise VerificationNotFound("No pending verification for this number or sid.")
        raise MaxCheckAttempts("Max check attempts reached.")

    def _locate(self, service_sid: str, sid: str) -> tuple[str, str]:
        where = self._store.locate(sid)
        if where is None or where[0] != service_sid:
            raise VerificationNotFound("No verification of this service has this sid.")
        return where
