"""The one way in for every queue: raw messages from any transport -> one outcome each.

The SQS batch handler, the Pub/Sub CloudEvent function, the Celery task and the inline
publisher all hand their payloads here; each then maps the outcomes to its transport's
words (a batch item failure, an HTTP 503, a task retry).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from pydantic import ValidationError

from smscode.domain.errors import Unavailable
from smscode.domain.messages import DeliveryMessage
from smscode.domain.outcomes import Outcome

log = logging.getLogger("smscode.intake")

# Lambda hands at most 10 records per batch from an SQS event source with batchSize 10.
MAX_THREADS = 10

Deliver = Callable[[DeliveryMessage], Outcome]


def receive(payloads: Sequence[str | bytes], deliver: Deliver) -> list[Outcome]:
    """Parse and deliver each payload; the outcome of each, in order. Never raises.

    Several payloads run at once on a thread pool (they are independent: ten slow provider
    calls take the time of one). RETRY asks the transport to offer the message again;
    MALFORMED is a payload no retry can fix.
    """
    if len(payloads) <= 1:
        return [_receive_one(payload, deliver) for payload in payloads]
    with ThreadPoolExecutor(max_workers=min(MAX_THREADS, len(payloads))) as pool:
        return list(pool.map(partial(_receive_one, deliver=deliver), payloads))


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
