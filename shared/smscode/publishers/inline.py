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

    def __init__(self, deliver: Callable[[DeliveryMessage], Outcome], threads: int = 8) -> None:
        self._deliver = deliver
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="smscode-inline")

    def publish(self, message: DeliveryMessage) -> None:
        """Start delivering; returns at once, like a queue would."""
        self._pool.submit(self._run, message)

    def _run(self, message: DeliveryMessage) -> None:
        attempt = 0
        try:
            while self._deliver(message) is Outcome.RETRY:
                time.sleep(backoff_seconds(attempt))
                attempt += 1
        except Exception:
            log.exception("inline delivery crashed", extra={"request_id": message.request_id})
