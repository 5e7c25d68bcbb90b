"""The one way in for every queue: raw messages from any transport -> one outcome each.

The SQS batch handler, the Pub/Sub CloudEvent function, the Celery task and the inline
publisher all hand their payloads here; each then maps the outcomes to its transport's
words (a batch item failure, an HTTP 503, a task retry).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from pydantic import ValidationError

from smscode.domain.errors import Unavailable
from smscode.domain.messages import DeliveryMessage
from smscode.domain.outcomes import Outcome

log = logging.getLogger("smscode.intake")

# A bound on one process's delivery threads, not an allocation: a thread starts only when
# a payload waits and none is idle, so a Lambda container (one batch of at most 10 records
# at a time) never runs more than 10, and 32 batches at once in one process run 320.
PROCESS_THREADS = 1024

Deliver = Callable[[DeliveryMessage], Outcome]


class _Threads:
    """This process's delivery threads, kept from one batch to the next.

    A pool per batch started (and joined) up to ten threads per batch: about a third of a
    delivery's CPU at 16 concurrent batches in one process (docs/benchmarks/history.md,
    "Delivery, third pass"). After a fork the child makes its own: it inherits no thread of
    its parent.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = 0
        self._pool: ThreadPoolExecutor | None = None

    def pool(self) -> ThreadPoolExecutor:
        """The pool, made on first use in this process."""
        pool = self._pool
        if pool is None or self._pid != os.getpid():
            with self._lock:
                if self._pool is None or self._pid != os.getpid():
                    self._pool = ThreadPoolExecutor(PROCESS_THREADS, "smscode-intake")
                    self._pid = os.getpid()
                pool = self._pool
        return pool


_THREADS = _Threads()


def receive(payloads: Sequence[str | bytes], deliver: Deliver) -> list[Outcome]:
    """Parse and deliver each payload; the outcome of each, in order. Never raises.

    Several payloads run at once on the process's delivery threads (they are independent:
    ten slow provider calls take the time of one). RETRY asks the transport to offer the
    message again; MALFORMED is a payload no retry can fix.
    """
    if len(payloads) <= 1:
        return [_receive_one(payload, deliver) for payload in payloads]
    return list(_THREADS.pool().map(partial(_receive_one, deliver=deliver), payloads))


def _receive_one(payload: str | bytes, deliver: Deliver) -> Outcome:
    try:
        message = DeliveryMessage.from_json(payload)
    except ValidationError as error:
        # Only the error kinds and places are logged: the payload may hold a sealed code.
        where = ", ".join(f"{e['type']} at {'.'.join(map(str, e['loc']))}" for e in error.errors())
        log.error("malformed delivery message: %s", where[:300])
        return Outcome.MALFORMED
    extra = {"request_id": message.request_id, "outcome": "retry"}
    try:
        return deliver(message)
    except Unavailable:
        log.warning("code store unavailable; will retry", extra=extra)
    except Exception as error:
        # A bug must not lose the message: keep it for a retry, which ends once it expires.
        # No traceback: log lines must stay free of stack traces.
        log.error("delivery crashed: %s", type(error).__name__, extra=extra)
    return Outcome.RETRY
