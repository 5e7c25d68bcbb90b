"""The use cases behind the HTTP API: issue a code, verify it, report a send's state."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from smscode import codes, metrics, phones
from smscode.errors import (
    InvalidCode,
    NoActiveCode,
    NotFound,
    RateLimited,
    TooManyAttempts,
    Unavailable,
)
from smscode.messages import DeliveryMessage
from smscode.publishers import Publisher, PublishError
from smscode.sealing import Sealer
from smscode.settings import Settings
from smscode.store import Limits, Store

log = logging.getLogger("smscode.service")

_REJECTIONS = {
    "resend_interval": "A code was sent to this phone moments ago; wait before asking again.",
    "phone_daily": "This phone has had too many codes today.",
    "ip_hourly": "Too many codes were requested from this address; try again later.",
    "prefix_hourly": "Too many codes were requested for this number range; try again later.",
    "global_minute": "The service is sending too many codes right now; try again shortly.",
}


@dataclass(frozen=True)
class Issued:
    """An accepted send: its handle and the timings the page needs."""

    request_id: str
    expires_in: int
    resend_after: int


class CodeService:
    """Issues and verifies codes over the atomic store; queues deliveries via a publisher."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        publisher: Publisher,
        sealer: Sealer,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._store = store
        self._publisher = publisher
        self._sealer = sealer
        self._secret = settings.code_secret.get_secret_value().encode()
        self._clock = clock
        self._limits = Limits(
            code_ttl=settings.code_ttl_seconds,
            resend_interval=settings.resend_interval_seconds,
            phone_daily=settings.phone_daily_limit,
            ip_hourly=settings.ip_hourly_limit,
            prefix_hourly=settings.prefix_hourly_limit,
            global_minute=settings.global_minute_limit,
        )
        if settings.test_phones:  # said at every start: fixed codes must never ship unnoticed
            log.warning("TEST_PHONES active: %d phones get fixed codes", len(settings.test_phones))

    def issue(self, raw_phone: str, client_ip: str) -> Issued:
        """Issue a code to the phone and queue its SMS.

        Raises:
            InvalidPhone, RateLimited, Unavailable.
        """
        phone = phones.normalize(raw_phone)
        if phone in self._settings.test_phones:
            return self._issue_test_phone(phone, self._settings.test_phones[phone])
        phones.require_allowed(phone, self._settings.send_allowed_prefixes)
        code = codes.generate_code(self._settings.code_length)
        message_id, request_id = uuid.uuid4().hex, uuid.uuid4().hex
        send = {"phone": phone, "ip": client_ip, "message_id": message_id}
        rejection = self._store.issue(
            **send,
            masked=phones.mask(phone),
            code_hash=codes.hash_code(self._secret, phone, code),
            request_id=request_id,
            limits=self._limits,
        )
        if rejection is not None:
            metrics.send_rejected(rejection.reason)
            extra = {"phone": phones.mask(phone), "outcome": rejection.reason}
            log.info("send refused: %s", rejection.reason, extra=extra)
            raise RateLimited(_REJECTIONS[rejection.reason], retry_after=rejection.retry_after)
        now = datetime.fromtimestamp(self._clock(), UTC)
        message = DeliveryMessage(
            message_id=message_id,
            request_id=request_id,
            phone=phone,
            template_id=self._settings.ronglian_template_id,
            sealed_code=self._sealer.seal(code, message_id),
            minutes=self._settings.code_minutes,
            created_at=now,
            expires_at=now + timedelta(seconds=self._settings.code_ttl_seconds),
        )
        try:
            self._publisher.publish(message)
        except PublishError as error:
            # No code may stay issued that can never be delivered: give the phone its slot back.
            self._store.unissue(**send, request_id=request_id)
            log.error("queue unavailable: %s", error, extra={"request_id": request_id})
            raise Unavailable(
                "The delivery queue is unavailable; please try again shortly."
            ) from None
        metrics.send_accepted()
        extra = {"request_id": request_id, "phone": phones.mask(phone), "outcome": "accepted"}
        log.info("code issued", extra=extra)
        return Issued(
            request_id=request_id,
            expires_in=self._settings.code_ttl_seconds,
            resend_after=self._settings.resend_interval_seconds,
        )

    def _issue_test_phone(self, phone: str, code: str) -> Issued:
        """A TEST_PHONES send: the fixed code stored in one script, no cap counted, no SMS."""
        request_id = uuid.uuid4().hex
        self._store.issue_test_phone(
            phone=phone,
            masked=phones.mask(phone),
            code_hash=codes.hash_code(self._secret, phone, code),
            message_id=uuid.uuid4().hex,
            request_id=request_id,
            ttl=self._settings.code_ttl_seconds,
        )
        extra = {"request_id": request_id, "phone": phones.mask(phone), "outcome": "test_phone"}
        log.warning("test phone: fixed code stored, no SMS sent", extra=extra)
        return Issued(
            request_id=request_id,
            expires_in=self._settings.code_ttl_seconds,
            resend_after=self._settings.resend_interval_seconds,
        )

    def verify(self, raw_phone: str, code: str) -> None:
        """Accept the phone's code once; count and burn wrong tries.

        Raises:
            InvalidPhone, InvalidCode, NoActiveCode, TooManyAttempts, Unavailable.
        """
        phone = phones.normalize(raw_phone)
        outcome, detail = self._store.verify(
            phone=phone,
            candidate_hash=codes.hash_code(self._secret, phone, code),
            max_attempts=self._settings.max_verify_attempts,
            daily_failures=self._settings.verify_failures_daily_limit,
        )
        metrics.verified(outcome)
        log.info(
            "verification %s", outcome, extra={"phone": phones.mask(phone), "outcome": outcome}
        )
        if outcome == "ok":
            return
        if outcome == "invalid":
            raise InvalidCode("The code is not correct.", attempts_left=int(detail))
        if outcome == "none":
            raise NoActiveCode("No code is waiting for this phone; request a new one.")
        if outcome == "burned":
            raise TooManyAttempts("Too many wrong codes; this code no longer works.")
        raise TooManyAttempts("Too many wrong codes for this phone today; try again tomorrow.")

    def status(self, request_id: str) -> dict[str, str]:
        """The delivery state of one accepted send, phone masked.

        Raises:
            NotFound: unknown or expired request id.
        """
        state = self._store.request_state(request_id) if len(request_id) == 32 else {}
        if not state:
            raise NotFound("No send with this request id is known (or it has expired).")
        return {"request_id": request_id, "state": state["state"], "phone": state["phone"]}
