"""Delivers in this process, on a small thread pool: for tests and demos without a queue."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from smscode.delivery import Outcome, backoff_seconds
from smscode.messages import DeliveryMessage

log = logging.getLogger("smscode.inline")


class InlinePublisher:
    """Hands each message to `deliver` on a worker thread, retrying with backoff."""

    def __init__(
        self,
        deliver: Callable[[DeliveryMessage], Outcome],
        threads: int = 8,
        *,
        retry_base: float = 1.0,
        retry_cap: float = 30.0,
    ) -> None:
        self._deliver = deliver
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="smscode-inline")
        self._base, self._cap = retry_base, retry_cap

    def publish(self, message: DeliveryMessage) -> None:
        """Start delivering; returns at once, like a queue would."""
        self._pool.submit(self._run, message)

    def _run(self, message: DeliveryMessage) -> None:
        attempt = 0
        while True:
            try:
                outcome = self._deliver(message)
            except Exception as error:
                # Redis down or a bug: keep trying; the core drops the message once it expires.
                # No traceback: log lines must stay free of stack traces.
                extra = {"request_id": message.request_id, "outcome": "retry"}
                log.error("inline delivery crashed: %s", type(error).__name__, extra=extra)
                outcome = Outcome.RETRY
            if outcome is not Outcome.RETRY:
                return
            time.sleep(backoff_seconds(attempt, base=self._base, cap=self._cap))
            attempt += 1
