"""The verify use case: accept a phone's code once, count and burn wrong tries."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from smscode.domain import codes, phones, purposes
from smscode.domain.errors import InvalidCode, NoActiveCode, RateLimited, TooManyAttempts
from smscode.domain.policy import Policy
from smscode.domain.pumping import BlockWatch
from smscode.service_layer.ports import CodeStore, Metrics, TokenSigner

log = logging.getLogger("smscode.service")


@dataclass(frozen=True)
class Verified:
    """A code accepted: the signed proof for the app's backend, when a signing key is set."""

    token: str | None = None


class Verifier:
    """Checks codes against the store's hash, in one atomic step per attempt."""

    def __init__(
        self,
        policy: Policy,
        store: CodeStore,
        secret: bytes,
        metrics: Metrics,
        signer: TokenSigner | None = None,
    ) -> None:
        self._policy = policy
        self._store = store
        self._secret = secret
        self._metrics = metrics
        self._signer = signer

    def verify(
        self, raw_phone: str, code: str, purpose: str = purposes.DEFAULT, client_ip: str = ""
    ) -> Verified:
        """Accept the phone's code for this purpose once; count and burn wrong tries.

        A code sent for another purpose is not looked at (nor consumed): that answers as
        no code at all. Failures cost the asking client (`client_ip`); a phone without a
        live code is left as it was.

        Raises:
            InvalidPhone, InvalidRequest (purpose), InvalidCode, NoActiveCode,
            TooManyAttempts, RateLimited (the client's failures), Unavailable.
        """
        policy = self._policy
        phone = phones.normalize(raw_phone)
        purpose = purposes.check(purpose)
        outcome, detail = self._store.verify(
            phone=phone,
            candidate_hash=codes.hash_code(self._secret, phone, code),
            max_attempts=policy.max_verify_attempts,
            daily_failures=policy.verify_failures_daily,
            pumping=BlockWatch.of(phone, policy.pumping, tracked=phone not in policy.test_phones),
            client=client_ip,
            client_failures=policy.verify_client_hourly,
            purpose=purpose,
        )
        self._metrics.verified(outcome)
        log.info(
            "verification %s", outcome, extra={"phone": phones.mask(phone), "outcome": outcome}
        )
        if outcome == "ok":
            signer = self._signer
            return Verified(signer.sign(phone=phone, purpose=purpose) if signer else None)
        if outcome == "throttled":
            raise RateLimited(
                "Too many failed verifications from this address; try again later.",
                retry_after=int(detail),
                reason="verify_ip_hourly",
            )
        if outcome == "invalid":
            raise InvalidCode("The code is not correct.", attempts_left=int(detail))
        if outcome == "none":
            raise NoActiveCode("No code is waiting for this phone; request a new one.")
        if outcome == "burned":
            raise TooManyAttempts("Too many wrong codes; this code no longer works.")
        raise TooManyAttempts("Too many wrong codes for this phone today; try again tomorrow.")
