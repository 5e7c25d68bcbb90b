"""Twilio-compatible verifications on Redis: one record per (service, number), one Lua script
per decision (see `lua/verification_*.lua`), next to the core's code hash they guard."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, cast

from smscode.adapters import keys
from smscode.adapters.redis_client import Client, load_script, now_ms, redis_errors
from smscode.adapters.redis_store import CONSUMED_KEEP_MS, verified_counting, verifying
from smscode.domain import purposes
from smscode.domain.pumping import BlockWatch
from smscode.domain.verifications import SendAttempt, Status, Verification
from smscode.service_layer.ports import CheckOutcome

# A sid outlives its record so a late fetch still finds which number to look under.
SID_INDEX_TTL = 86400


def _code(phone: str) -> str:
    """The number's code for this API: its own purpose, apart from the native routes' codes."""
    return keys.code(phone, purposes.TWILIO)


def _verification(flat: Sequence[str]) -> Verification | None:
    """A record from HGETALL's flat field/value list (None for an empty one)."""
    if not flat:
        return None
    fields = dict(zip(flat[::2], flat[1::2], strict=True))
    return Verification(
        sid=fields["sid"],
        service_sid=fields["service"],
        phone=fields["phone"],
        status=cast(Status, fields["status"]),
        sends=tuple(SendAttempt(sid, int(at)) for sid, at in json.loads(fields["sends"])),
        created_ms=int(fields["created"]),
        updated_ms=int(fields["updated"]),
    )


class RedisVerificationStore:
    """The `VerificationStore` port on Redis; errors become Unavailable."""

    def __init__(self, client: Client, clock: Callable[[], int] = now_ms) -> None:
        self.client = client
        self._clock = clock
        self._attach = load_script(client, "verification_attach")
        self._check = load_script(client, "verification_check", "lib_pumping")
        self._close = load_script(client, "verification_close")
        self._verify_lost = load_script(client, "verify_lost")

    def attach(
        self,
        *,
        service_sid: str,
        phone: str,
        new_sid: str,
        request_id: str,
        attempt_sid: str,
        ttl: int,
    ) -> Verification:
        """Record a send on the number's pending verification, or start one under `new_sid`."""
        args: list[str | int] = [
            new_sid, request_id, attempt_sid, self._clock(), ttl, service_sid, phone,
            SID_INDEX_TTL,
        ]  # fmt: skip
        record_keys = [
            keys.verification(service_sid, phone),
            keys.verification_sid(new_sid),
            _code(phone),
        ]
        with redis_errors():
            flat = self._attach(keys=record_keys, args=args)
        verification = _verification(flat)
        assert verification is not None  # the script always returns the record it wrote
        return verification

    def locate(self, sid: str) -> tuple[str, str] | None:
        """The (service sid, phone) a verification sid was started for, if still known."""
        with redis_errors():
            where = self.client.get(keys.verification_sid(sid))
        if not where:
            return None
        service_sid, _, phone = cast(str, where).partition(" ")
        return service_sid, phone

    def pending(self, service_sid: str, phone: str) -> Verification | None:
        """The number's pending verification while it still owns its code, else None."""
        with redis_errors():
            pipe = self.client.pipeline(transaction=False)
            pipe.hgetall(keys.verification(service_sid, phone))
            pipe.hget(_code(phone), "rid")
            record, code_rid = cast(list[Any], pipe.execute())
        if not record or record.get("status") != "pending" or record.get("rid") != code_rid:
            return None
        return _verification([item for pair in record.items() for item in pair])

    def check(
        self,
        *,
        service_sid: str,
        phone: str,
        sid: str,
        candidate_hash: str,
        max_checks: int,
        daily_failures: int,
        pumping: BlockWatch,
    ) -> tuple[CheckOutcome, Verification | None]:
        """Compare a code with the verification's own, count it, approve or exhaust it.

        An approval counts as a verified send of its number block, and consumes the code,
        as a native verify does (a lost reply does not lose the code: `verifying`).
        """
        now = self._clock()
        counted_keys, counted_args = verified_counting(pumping, now)
        outcome, flat = verifying(
            lambda nonce: self._check(
                keys=[
                    keys.verification(service_sid, phone), _code(phone),
                    keys.verify_failures(phone), *counted_keys,
                ],
                args=[
                    sid, candidate_hash, max_checks, daily_failures, now, CONSUMED_KEEP_MS,
                    nonce, *counted_args,
                ],
            ),
            self._verify_lost,
            _code(phone),
        )  # fmt: skip
        return outcome, _verification(flat)

    def close(
        self, *, service_sid: str, phone: str, sid: str, status: Status
    ) -> Verification | None:
        """Cancel or approve a pending verification; None when it is not pending."""
        with redis_errors():
            flat = self._close(
                keys=[keys.verification(service_sid, phone), _code(phone)],
                args=[sid, status, self._clock()],
            )
        return _verification(flat)
