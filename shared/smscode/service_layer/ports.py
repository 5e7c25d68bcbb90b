"""The ports the use cases need, as Protocols: a fake is a small class, no inheritance."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from smscode.domain.messages import DeliveryMessage
from smscode.domain.outcomes import Result, Sms
from smscode.domain.policy import Limits, Rejection
from smscode.domain.pumping import BlockedBlock, BlockWatch
from smscode.domain.verifications import Status, Verification

ClaimResult = Literal["go", "sent", "failed", "expired", "skipped", "busy", "elsewhere"]
FinalState = Literal["sent", "failed", "expired", "skipped"]
VerifyOutcome = Literal["ok", "throttled", "locked", "none", "invalid", "burned"]
VerifyResult = tuple[VerifyOutcome, Any]
CheckOutcome = Literal["ok", "invalid", "max", "locked", "none"]
Clock = Callable[[], float]  # seconds since the epoch, like time.time


@dataclass(frozen=True)
class Staged:
    """A message made ready before the send decision, to be written in the same round trip.

    The store keeps `payload` in its outbox (due again after `recheck_ms`) in the script that
    accepts the send; with a `queue_key` it also pushes `envelope` onto that list, so a send
    on a broker sharing the store's Redis is queued with no second round trip.
    """

    message_id: str
    payload: str
    recheck_ms: int
    queue_key: str | None = None
    envelope: str | None = None


@dataclass(frozen=True)
class Send:
    """One send for the store to decide: the code to keep and what its caps and counts read.

    The same value undoes the send (`CodeStore.unissue`) when its message cannot be queued.
    """

    phone: str  # E.164
    masked: str  # the phone as logs and the status route show it
    ip: str  # the client's address, as the per-client cap counts it
    code_hash: str
    message_id: str  # the provider's idempotency key
    request_id: str  # the handle the caller gets
    limits: Limits
    pumping: BlockWatch
    purpose: str


class CodeStore(Protocol):
    """The atomic decisions over codes, caps and delivery state.

    Every method is one atomic step; each raises `domain.errors.Unavailable` when the
    store cannot be reached.
    """

    def issue(self, send: Send) -> Rejection | None:
        """Store a new code if every cap and the block's conversion allow it; else say why not."""
        ...

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
        ...

    def unissue(self, send: Send) -> bool:
        """Undo an accepted send that could not be queued, if it is still the phone's latest."""
        ...

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
        """Compare, count and consume or burn the phone's code for this purpose; count a
        success for its number block.

        A failure counts against the client (at most `client_failures` an hour, then
        'throttled' with the wait), and against the phone's `daily_failures` only when it
        was a wrong code for a live code: without one, nothing of the phone's is touched.
        """
        ...

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
        """Take the delivery lease on a message if it is still current and not yet final, and
        not pinned to a provider outside `providers` ('elsewhere'); with `pin_to`, pin an
        unpinned message to that provider for `pin_ttl` seconds as the lease is taken."""
        ...

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
        """Record a final state (never over 'sent') and release the lease if we hold it."""
        ...

    def request_state(self, request_id: str) -> dict[str, str]:
        """The stored delivery state of one request ({} when unknown or expired)."""
        ...


class TokenSigner(Protocol):
    """Signs the proof of a verification that the app's backend checks against our JWKS."""

    def sign(self, *, phone: str, purpose: str) -> str:
        """A compact JWS saying this E.164 phone was just verified for this purpose."""
        ...


class PumpingStore(Protocol):
    """The operator's side of SMS pumping: blocks by hand and the dashboard's numbers."""

    def block(self, block: str, seconds: int, reason: str) -> None:
        """Refuse the block's sends for `seconds`, whatever its conversion."""
        ...

    def unblock(self, block: str, window_seconds: int) -> bool:
        """Lift a block's refusals (to everyone and to single networks) and forget its
        window (else it would block again at once); False when none was in force."""
        ...

    def blocked(self) -> list[BlockedBlock]:
        """The blocks refused right now, soonest to end first."""
        ...

    def hourly(self, hours: int) -> list[dict[str, Any]]:
        """Counts per hour, oldest first, the current hour last: `hour` (epoch hours) and
        `sends`, `verified`, `refused`, `delivery_<state>` where non-zero."""
        ...

    def top_blocks(self, hours: int, limit: int) -> list[dict[str, Any]]:
        """The blocks with the most sends over the last `hours`: block, sends, verified, refused."""
        ...


class PublishError(Exception):
    """The message could not be queued (broker down, queue missing, timeout)."""


class Publisher(Protocol):
    """Queues one message for delivery, at least once.

    Raises:
        PublishError: when the message was not queued; the caller undoes the send.
    """

    def publish(self, message: DeliveryMessage) -> None:
        """Queue the message or raise PublishError."""
        ...


@runtime_checkable
class StagingStore(Protocol):
    """A store whose send decision also writes a staged message, in the same atomic step."""

    def issue_staged(self, staged: Staged, send: Send) -> Rejection | None:
        """`CodeStore.issue`, writing `staged` (see `Staged`) when the send is accepted."""
        ...


@runtime_checkable
class StagingPublisher(Publisher, Protocol):
    """A publisher whose message rides in the store's send decision (see `Staged`)."""

    def stage(self, message: DeliveryMessage) -> Staged:
        """The message ready for the store's script."""
        ...

    def publish_staged(self, staged: Staged) -> None:
        """Queue what the script did not already queue, or raise PublishError."""
        ...


@dataclass(frozen=True)
class Lease:
    """The delivery lease one attempt holds on a message.

    `token` fences the attempt's writes (a pin, an unpin, a final state): each acts only
    while this token still holds the lease. `deadline` (time.monotonic()) is set strictly
    before the lease can lapse: every provider call of the attempt is over by then, and
    none starts after it, so no call outlives the lease and overlaps another worker's.
    """

    token: str
    deadline: float


class Provider(Protocol):
    """Sends one verification SMS; never raises for a provider or network failure."""

    def send(self, sms: Sms, lease: Lease) -> Result:
        """Send the SMS by the lease's deadline, deduplicated on `sms.key` where the provider
        can; NotSent without a call when no time is left."""
        ...


class Metrics(Protocol):
    """What the use cases count."""

    def send_accepted(self) -> None:
        """One send accepted and queued."""
        ...

    def send_rejected(self, reason: str) -> None:
        """One send refused by the cap named `reason`."""
        ...

    def verified(self, outcome: str) -> None:
        """One verification attempt, by its store outcome."""
        ...

    def delivered(self, outcome: str) -> None:
        """One delivery attempt, by its outcome."""
        ...

    def permanent_failure(self, code: str) -> None:
        """One send a provider refused for good, by its status code."""
        ...

    def pumping_blocked(self, how: str) -> None:
        """One number block blocked for pumping, `auto` by the rule or `manual`."""
        ...


CircuitState = Literal["closed", "open", "half_open"]
Change = tuple[CircuitState, CircuitState]  # (before, after)


@dataclass(frozen=True)
class Pin:
    """The provider a message may have gone to, and when that was last known, on the store's
    clock: `at` (epoch s) the pin was set or re-stamped, `age` seconds ago."""

    provider: str
    at: float
    age: float


class CircuitStore(Protocol):
    """Each provider's circuit breaker and each message's provider pin, shared by all workers.

    Every method is one atomic step; each raises `domain.errors.Unavailable` when the
    store cannot be reached.
    """

    def allow(self, provider: str) -> tuple[bool, Change]:
        """Whether a call may go to the provider now (a half-open circuit lets one probe)."""
        ...

    def record(self, provider: str, outcome: Literal["success", "failure", "trip"]) -> Change:
        """Count what a call ended in; 'trip' opens the circuit at once."""
        ...

    def states(self, providers: tuple[str, ...]) -> dict[str, CircuitState]:
        """Each provider's circuit as stored."""
        ...

    def pinned(self, key: str) -> Pin | None:
        """The message's pin, if any."""
        ...

    def pin(self, key: str, provider: str, *, token: str, previous: str | None) -> bool:
        """Pin the message to `provider`, stamped now, while `token` holds its delivery lease
        and its pin still names `previous` (None: no pin). False otherwise: the lease lapsed
        or is another worker's, or the pin moved; the caller must not call the provider."""
        ...

    def restamp(self, key: str, provider: str) -> None:
        """Stamp the pin now if it still names `provider`: an ambiguous answer came back."""
        ...

    def unpin(self, key: str, provider: str, *, token: str) -> None:
        """Forget the pin while `token` holds the lease and the pin names `provider`: that
        provider surely did not send the message."""
        ...


class VerificationStore(Protocol):
    """Twilio-compatible verifications around the core's codes, each decision one atomic step.

    A verification owns the code of the request id it last issued, and only while that code
    is still the number's Twilio code: a later send (under any service) ends it.
    """

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
        ...

    def locate(self, sid: str) -> tuple[str, str] | None:
        """The (service sid, phone) a verification sid was started for, if still known."""
        ...

    def pending(self, service_sid: str, phone: str) -> Verification | None:
        """The number's pending verification while it still owns its code, else None."""
        ...

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
        """Compare a code with the verification's own ('' sid: the number's pending one).

        An approval counts as a verified send of the number's block (`pumping`).
        """
        ...

    def close(
        self, *, service_sid: str, phone: str, sid: str, status: Status
    ) -> Verification | None:
        """Cancel or approve a pending verification; None when it is not pending."""
        ...
