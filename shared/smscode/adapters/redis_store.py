"""The code store on Redis: one method per atomic Lua script (see `lua/`)."""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import redis
from redis.commands.core import Script

from smscode.adapters import keys
from smscode.adapters.redis_client import (
    Client,
    CommandNotSent,
    load_script,
    now_ms,
    redis_errors,
)
from smscode.domain.errors import Unavailable
from smscode.domain.policy import Rejection
from smscode.domain.pumping import BlockWatch, network_of
from smscode.service_layer.ports import ClaimResult, FinalState, Send, Staged, VerifyResult

log = logging.getLogger("smscode.store")

HOUR_MS = 3_600_000
_SWEEP_BATCHES = 10


def _expired(payload: str, now_ms: int) -> bool:
    """Whether a queued message's code has surely expired (a payload this release cannot
    read is left to the deployment that queued it)."""
    try:
        expires = datetime.fromisoformat(json.loads(payload)["expires_at"])
    except (ValueError, KeyError, TypeError):
        return False
    return expires.timestamp() * 1000 <= now_ms


# A consumed code is kept this long (lua/verify.lua), so that a verify whose reply was lost
# can hand it back to its right code (lua/verify_lost.lua).
CONSUMED_KEEP_MS = 60_000


def _networks(watch: BlockWatch, now: int) -> list[str]:
    """The block's networks hashes of this window-long epoch and the one before."""
    epoch = now // (1000 * watch.rule.window_seconds)
    return [
        keys.pumping_networks(watch.block, epoch),
        keys.pumping_networks(watch.block, epoch - 1),
    ]


def _pumping_keys(watch: BlockWatch, now: int) -> list[str]:
    """The last KEYS of issue.lua and unissue.lua (pumping_send in lua/lib_pumping.lua)."""
    hour = now // HOUR_MS
    return [
        keys.pumping_window(watch.block), keys.pumping_blocked(), keys.pumping_details(),
        keys.stats_hour(hour), keys.stats_hour_sends(hour), keys.stats_hour_refused(hour),
        *_networks(watch, now), keys.pumping_network_blocked(),
    ]  # fmt: skip


def _pumping_args(watch: BlockWatch, now: int, network: str) -> list[str | int | float]:
    """The last ARGV of issue.lua and unissue.lua (pumping_send in lua/lib_pumping.lua);
    `network` the client's (`network_of`)."""
    rule = watch.rule
    return [
        watch.block, watch.mode, rule.min_sends, rule.min_conversion, rule.bucket_seconds,
        rule.buckets, rule.block_seconds, now, network, rule.per_network,
        1000 * rule.window_seconds,
    ]  # fmt: skip


def verified_counting(watch: BlockWatch, now: int) -> tuple[list[str], list[str | int]]:
    """The KEYS and ARGV of a verified code's counting (pumping_verify, lua/lib_pumping.lua)."""
    rule, hour = watch.rule, now // HOUR_MS
    return (
        [
            keys.pumping_window(watch.block), keys.stats_hour(hour),
            keys.stats_hour_verified(hour), *_networks(watch, now),
        ],
        [
            watch.block, watch.mode, rule.bucket_seconds, rule.buckets, now,
            1000 * rule.window_seconds,
        ],
    )  # fmt: skip


def verifying(check: Callable[[str], Any], lost: Script, code: str) -> Any:
    """`check(nonce)`, a verify script; if its reply may be lost, its code is not lost.

    A Redis that does not answer in time (Unavailable, a 503 or a retry) may have run the
    script: the right code would be consumed while its asker is told to try again, and the
    retry would find no code. So the call's nonce goes to lua/verify_lost.lua, which gives
    a code that call consumed back to its right code once, or stops a call not yet run from
    ever running. Best effort: if that cannot reach Redis either, the code may stay consumed.
    """
    nonce = secrets.token_hex(8)
    try:
        with redis_errors():
            return check(nonce)
    except Unavailable as error:
        if isinstance(error.__cause__, CommandNotSent):
            raise  # Redis never had it: nothing to hand back (a Redis down, most likely)
        try:
            with redis_errors():
                lost(keys=[code], args=[nonce])
        except Unavailable:
            log.warning("a verify's reply was lost and its code could not be handed back")
        raise


class RedisStore:
    """The `CodeStore` port on Redis, one Lua script per decision; errors become Unavailable."""

    def __init__(self, client: Client, clock: Callable[[], int] = now_ms) -> None:
        self.client = client
        self._clock = clock
        self._issue = load_script(client, "issue", "lib_pumping")
        self._unissue = load_script(client, "unissue", "lib_pumping")
        self._verify = load_script(client, "verify", "lib_pumping")
        self._verify_lost = load_script(client, "verify_lost")
        self._claim = load_script(client, "claim", "lib_pins")
        self._finish = load_script(client, "finish")
        self._issue_test_phone = load_script(client, "issue_test_phone")
        self._sweep = load_script(client, "sweep", "lib_pins")
        self._own = threading.local()

    def _thread_client(self) -> Client:
        """This thread's client on a connection of its own, for the delivery's two scripts.

        Each command through the shared client takes a connection from its pool and puts it
        back, under the pool's lock, and peeks at the socket first; at hundreds of delivery
        threads the lock is contended (docs/benchmarks/history.md, "Delivery, third pass").
        A thread keeps its connection (taken from the same pool, so retries and errors are
        the same client's). Made again in a forked child, which must not talk on its
        parent's socket. A cluster client routes each command to a node: it is used as it is.
        """
        client = self.client
        if not isinstance(client, redis.Redis):
            return client
        own: tuple[int, redis.Redis] | None = getattr(self._own, "client", None)
        if own is None or own[0] != os.getpid():
            pool = client.connection_pool
            own = (os.getpid(), redis.Redis(connection_pool=pool, single_connection_client=True))
            self._own.client = own
        return own[1]

    @staticmethod
    def _send_keys(send: Send) -> list[str]:
        """The first KEYS of issue.lua and unissue.lua."""
        prefix = send.phone.removeprefix("+86")[:7]
        return [
            keys.code(send.phone, send.purpose),
            keys.resend(send.phone),
            keys.phone_daily(send.phone),
            keys.ip_hourly(send.ip),
            keys.prefix_hourly(prefix),
            keys.global_minute(),
            keys.request(send.request_id),
        ]

    def issue(self, send: Send) -> Rejection | None:
        """Store a new code for the phone if every cap allows it; else say which cap refused."""
        return self.issue_staged(None, send)

    def issue_staged(self, staged: Staged | None, send: Send) -> Rejection | None:
        """`issue`, and the message enters the outbox (and its broker queue, when that lives
        here) in the same script: an accepted send is one round trip (None: `issue` alone)."""
        limits, pumping = send.limits, send.pumping
        now = self._clock()
        args: list[str | int | float] = [
            send.code_hash, send.message_id, send.request_id, limits.code_ttl,
            limits.resend_interval, limits.phone_daily, limits.ip_hourly, limits.prefix_hourly,
            limits.global_minute, send.masked, now,
        ]  # fmt: skip
        # (speed) the outbox keys and the staged message, before pumping's (read from the end)
        speed_keys = [keys.outbox(), keys.outbox_messages()]
        speed_args: list[str | int | float] = ["", 0, ""]
        if staged is not None:
            # the envelope only with its queue: issue.lua would push it onto KEYS[10] anyway
            pushed = staged.envelope or "" if staged.queue_key is not None else ""
            speed_args = [staged.payload, now + staged.recheck_ms, pushed]
            if staged.queue_key is not None:
                speed_keys.append(staged.queue_key)
        keys_ = self._send_keys(send) + speed_keys + _pumping_keys(pumping, now)
        network = network_of(send.ip)
        with redis_errors():
            result = self._issue(
                keys=keys_, args=args + speed_args + _pumping_args(pumping, now, network)
            )
        if result[0] == 1:
            return None
        new_block = (int(result[4]), int(result[5])) if len(result) > 3 and result[3] else None
        alone = len(result) > 6 and result[6] == "network"  # refused to this network only
        return Rejection(
            reason=str(result[1]), retry_after=int(result[2]), new_block=new_block,
            network=network if alone else None,
        )  # fmt: skip

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
        """Store a TEST_PHONES code: no cap checked or counted, the request marked skipped."""
        args: list[str | int] = [code_hash, message_id, request_id, ttl, masked, self._clock()]
        with redis_errors():
            self._issue_test_phone(
                keys=[keys.code(phone, purpose), keys.request(request_id)], args=args
            )

    def unissue(self, send: Send) -> bool:
        """Undo an accepted send that could not be queued, if it is still the phone's latest."""
        now = self._clock()
        keys_ = self._send_keys(send) + _pumping_keys(send.pumping, now)
        with redis_errors():
            args = [send.message_id, *_pumping_args(send.pumping, now, network_of(send.ip))]
            return bool(self._unissue(keys=keys_, args=args))

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
        """Compare, count and consume or burn the phone's code for the purpose in one step;
        a failure counts against the client, and against the phone only with a live code."""
        counted_keys, counted_args = verified_counting(pumping, self._clock())
        code = keys.code(phone, purpose)
        result = verifying(
            lambda nonce: self._verify(
                keys=[code, keys.verify_failures(phone), keys.verify_client_hourly(client),
                      *counted_keys],
                args=[candidate_hash, max_attempts, daily_failures, client_failures,
                      CONSUMED_KEEP_MS, nonce, *counted_args],
            ),
            self._verify_lost,
            code,
        )  # fmt: skip
        return (result[0], result[1] if len(result) > 1 else None)

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
        """Take the delivery lease on a message if it is still current, not yet final and not
        pinned to a provider outside `providers`; pin it to `pin_to` if given (claim.lua)."""
        with redis_errors():
            result = self._claim(
                keys=[
                    keys.code(phone, purpose), keys.request(request_id), keys.lease(message_id),
                    keys.outbox(), keys.outbox_messages(), keys.pin(message_id),
                ],
                args=[
                    message_id, lease_ms, token, self._clock(), ",".join(providers),
                    pin_to or "", pin_ttl,
                ],
                client=self._thread_client(),
            )  # fmt: skip
        return result  # type: ignore[no-any-return]

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
        """Record a final state (never over 'sent') and release the lease if we hold it.

        A final message leaves the outbox and drops its provider pin (no provider is called
        for it again); an unfinished one is looked at again in `recheck_ms` unless its retry
        finishes it first.
        """
        now = self._clock()
        with redis_errors():
            result = self._finish(
                keys=[
                    keys.request(request_id), keys.lease(message_id),
                    keys.outbox(), keys.outbox_messages(), keys.stats_hour(now // HOUR_MS),
                    keys.pin(message_id),
                ],
                args=[
                    state or "", sid, token, now, ttl, masked, message_id, now + recheck_ms,
                    provider,
                ],
                client=self._thread_client(),
            )  # fmt: skip
        return result  # type: ignore[no-any-return]

    def hold(self, message_id: str, payload: str, recheck_ms: int) -> None:
        """Put a message in the outbox before it is queued, to republish if it goes missing."""
        with redis_errors():
            pipe = self.client.pipeline(transaction=True)
            pipe.hset(keys.outbox_messages(), message_id, payload)
            pipe.zadd(keys.outbox(), {message_id: self._clock() + recheck_ms})
            pipe.execute()

    def release(self, message_id: str) -> None:
        """Take a message out of the outbox (it could not be queued after all)."""
        with redis_errors():
            pipe = self.client.pipeline(transaction=True)
            pipe.zrem(keys.outbox(), message_id)
            pipe.hdel(keys.outbox_messages(), message_id)
            pipe.execute()

    def sweep(self, recheck_ms: int, providers: Sequence[str], limit: int = 100) -> list[str]:
        """Payloads of outbox messages overdue for a final state, once per `recheck_ms` each,
        but for those pinned to a provider outside `providers`: left due for others (and
        dropped once their code has expired, when nobody needs them any more).

        A sweep reads on past those it leaves, in batches of `limit` (at most
        `_SWEEP_BATCHES`), so that however many sit at the head of the outbox, the messages
        behind them are still handed out.
        """
        out: list[str] = []
        listed, left = ",".join(providers), 0
        now = self._clock()
        for _ in range(_SWEEP_BATCHES):
            with redis_errors():
                due = self.client.zrangebyscore(keys.outbox(), "-inf", now, start=left, num=limit)
                if not due:
                    break
                handed, elsewhere = self._sweep(
                    keys=[keys.outbox(), keys.outbox_messages(), *(keys.pin(str(i)) for i in due)],
                    args=[now, now + recheck_ms, listed, *due],
                )
            out += [str(payload) for payload in handed]
            for message_id, payload in elsewhere:
                if _expired(str(payload), now):
                    self.release(str(message_id))
                else:
                    left += 1  # still due, ahead of the next batch
            if len(due) < limit:
                break
        return out

    def request_state(self, request_id: str) -> dict[str, str]:
        """The stored delivery state of one request ({} when unknown or expired)."""
        with redis_errors():
            return self.client.hgetall(keys.request(request_id))  # type: ignore[return-value]

    def ping(self) -> None:
        """Raise Unavailable unless Redis answers."""
        with redis_errors():
            self.client.ping()
