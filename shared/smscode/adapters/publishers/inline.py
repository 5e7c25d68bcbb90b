"""Delivers in this process, on a small thread pool: for tests and demos without a queue."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from smscode.domain.messages import DeliveryMessage
from smscode.domain.outcomes import Outcome
from smscode.service_layer.deliver import backoff_seconds

# The intake's signature: wire payloads in, one outcome each out (never raises).
Intake = Callable[[Sequence[str]], list[Outcome]]


class InlinePublisher:
    """Hands each message, as its wire form, to the intake on a thread, retrying with backoff."""

    def __init__(
        self,
        intake: Intake,
        threads: int = 8,
        *,
        retry_base: float = 1.0,
        retry_cap: float = 30.0,
    ) -> None:
        self._intake = intake
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="smscode-inline")
        self._base, self._cap = retry_base, retry_cap

    def publish(self, message: DeliveryMessage) -> None:
        """Start delivering; returns at once, like a queue would."""
        self._pool.submit(self._run, message.to_json())

    def _run(self, payload: str) -> None:
        attempt = 0
        while self._intake([payload]) == [Outcome.RETRY]:
            time.sleep(backoff_seconds(attempt, base=self._base, cap=self._cap))
            attempt += 1
