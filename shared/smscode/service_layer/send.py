"""The send use case: issue a code under every cap, queue its SMS, report where it stands."""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NoReturn

from smscode.domain import codes, phones, purposes
from smscode.domain.errors import FraudSuspected, NotFound, RateLimited, Unavailable
from smscode.domain.messages import DeliveryMessage
from smscode.domain.policy import Policy, Rejection
from smscode.domain.pumping import BlockWatch
from smscode.domain.sealing import Sealer
from smscode.service_layer.ports import (
    Clock,
    CodeStore,
    Metrics,
    Publisher,
    PublishError,
    Send,
    Staged,
    StagingPublisher,
    StagingStore,
)
from smscode.service_layer.refusals import Refusals

log = logging.getLogger("smscode.service")

_REJECTIONS = {
    "resend_interval": "A code was sent to this phone moments ago; wait before asking again.",
    "phone_daily": "This phone has had too many codes today.",
    "ip_hourly": "Too many codes were requested from this address; try again later.",
    "prefix_hourly": "Too many codes were requested for this number range; try again later.",
    "global_minute": "The service is sending too many codes right now; try again shortly.",
    "fraud_suspected": "Codes to this number range are paused: too few of them were used.",
}


@dataclass(frozen=True)
class Issued:
    """An accepted send: its handle and the timings the page needs."""

    request_id: str
    expires_in: int
    resend_after: int


class Sender:
    """Issues codes over the atomic store and queues each SMS through a publisher."""

    def __init__(
        self,
        policy: Policy,
        store: CodeStore,
        publisher: Publisher,
        sealer: Sealer,
        secret: bytes,
        metrics: Metrics,
        clock: Clock = time.time,
    ) -> None:
        self._policy = policy
        self._store = store
        self._publisher = publisher
        self._sealer = sealer
        self._secret = secret
        self._metrics = metrics
        self._clock = clock
        self._refusals = Refusals(clock=clock)
        # A staging publisher's message is written by the store's send decision itself.
        self._staging: tuple[StagingPublisher, StagingStore] | None = None
        if isinstance(publisher, StagingPublisher) and isinstance(store, StagingStore):
            self._staging = (publisher, store)
        if policy.test_phones:  # said at every start: fixed codes must never ship unnoticed
            log.warning("TEST_PHONES active: %d phones get fixed codes", len(policy.test_phones))

    def issue(self, raw_phone: str, client_ip: str, purpose: str = purposes.DEFAULT) -> Issued:
        """Issue a code for this purpose to the phone and queue its SMS.

        The caps and the resend interval count per phone, whatever the purpose.

        Raises:
            InvalidPhone, InvalidRequest (purpose), RateLimited, Unavailable.
        """
        policy = self._policy
        phone = phones.normalize(raw_phone)
        purpose = purposes.check(purpose)
        if phone in policy.test_phones:
            return self._issue_test_phone(phone, policy.test_phones[phone], purpose)
        phones.require_allowed(phone, policy.allowed_prefixes)
        watch = BlockWatch.of(phone, policy.pumping)
        known = self._refusals.check(phone)
        if known is not None:  # refused moments ago and still so: no Redis round trip
            self._refuse(known, phone, watch)
        code = codes.generate_code(policy.code_length)
        message_id, request_id = secrets.token_hex(16), secrets.token_hex(16)
        message = self._message(phone, code, message_id, request_id, purpose)
        send = Send(
            phone=phone, masked=phones.mask(phone), ip=client_ip,
            code_hash=codes.hash_code(self._secret, phone, code), message_id=message_id,
            request_id=request_id, limits=policy.limits, pumping=watch, purpose=purpose,
        )  # fmt: skip
        staged: Staged | None = None
        if self._staging is not None:
            staged = self._staging[0].stage(message)
            rejection = self._staging[1].issue_staged(staged, send)
        else:
            rejection = self._store.issue(send)
        if rejection is not None:
            self._refusals.remember(phone, rejection)
            self._refuse(rejection, phone, watch)
        try:
            if self._staging is not None and staged is not None:
                self._staging[0].publish_staged(staged)
            else:
                self._publisher.publish(message)
        except PublishError as error:
            # No code may stay issued that can never be delivered: give the phone its slot back.
            self._store.unissue(send)
            log.error("queue unavailable: %s", error, extra={"request_id": request_id})
            raise Unavailable(
                "The delivery queue is unavailable; please try again shortly."
            ) from None
        self._metrics.send_accepted()
        extra = {"request_id": request_id, "phone": phones.mask(phone), "outcome": "accepted"}
        log.info("code issued", extra=extra)
        return self._issued(request_id)

    def _message(
        self, phone: str, code: str, message_id: str, request_id: str, purpose: str
    ) -> DeliveryMessage:
        now = datetime.fromtimestamp(self._clock(), UTC)
        return DeliveryMessage(
            message_id=message_id,
            request_id=request_id,
            phone=phone,
            sealed_code=self._sealer.seal(code, message_id),
            minutes=self._policy.minutes,
            created_at=now,
            expires_at=now + timedelta(seconds=self._policy.code_ttl),
            purpose=purpose,
        )

    def _refuse(self, rejection: Rejection, phone: str, watch: BlockWatch) -> NoReturn:
        """Count, log and raise a refusal; a block the rule just blocked is logged as a warning."""
        self._metrics.send_rejected(rejection.reason)
        extra = {"phone": phones.mask(phone), "outcome": rejection.reason}
        log.info("send refused: %s", rejection.reason, extra=extra)
        message = _REJECTIONS[rejection.reason]
        if rejection.reason != "fraud_suspected":
            raise RateLimited(message, retry_after=rejection.retry_after, reason=rejection.reason)
        if rejection.new_block is not None and rejection.network is not None:
            self._metrics.pumping_blocked("network")
            sends, verified = rejection.new_block
            log.warning(
                "number block %s refused to network %s for pumping: %d sends, %d verified",
                watch.block, rejection.network, sends, verified,
                extra={"outcome": "pumping_blocked_network"},
            )  # fmt: skip
        elif rejection.new_block is not None:
            self._metrics.pumping_blocked("auto")
            sends, verified = rejection.new_block
            log.warning(
                "number block %s blocked for pumping: %d sends, %d verified in the window",
                watch.block, sends, verified, extra={"outcome": "pumping_blocked"},
            )  # fmt: skip
        raise FraudSuspected(message, retry_after=rejection.retry_after, reason=rejection.reason)

    def _issue_test_phone(self, phone: str, code: str, purpose: str) -> Issued:
        """A TEST_PHONES send: the fixed code stored in one script, no cap counted, no SMS."""
        request_id = secrets.token_hex(16)
        self._store.issue_test_phone(
            phone=phone,
            masked=phones.mask(phone),
            code_hash=codes.hash_code(self._secret, phone, code),
            message_id=secrets.token_hex(16),
            request_id=request_id,
            ttl=self._policy.code_ttl,
            purpose=purpose,
        )
        extra = {"request_id": request_id, "phone": phones.mask(phone), "outcome": "test_phone"}
        log.warning("test phone: fixed code stored, no SMS sent", extra=extra)
        return self._issued(request_id)

    def _issued(self, request_id: str) -> Issued:
        return Issued(
            request_id=request_id,
            expires_in=self._policy.code_ttl,
            resend_after=self._policy.resend_interval,
        )

    def status(self, request_id: str) -> dict[str, str | None]:
        """The delivery state of one accepted send, phone masked.

        Raises:
            NotFound: unknown or expired request id.
        """
        state = self._store.request_state(request_id) if len(request_id) == 32 else {}
        if not state:
            raise NotFound("No send with this request id is known (or it has expired).")
        return {
            "request_id": request_id,
            "state": state["state"],
            "phone": state["phone"],
            "provider": state.get("provider"),  # which provider took it; None until sent
        }
