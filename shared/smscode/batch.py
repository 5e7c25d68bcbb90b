"""Queue drivers over the delivery core: SQS batches (Lambda) and Pub/Sub CloudEvents."""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import ValidationError

from smscode.delivery import Outcome
from smscode.errors import Unavailable
from smscode.messages import DeliveryMessage
from smscode.settings import SettingsError

log = logging.getLogger("smscode.batch")

# Lambda hands at most 10 records per batch from an SQS event source with batchSize 10.
MAX_THREADS = 10

Deliver = Callable[[DeliveryMessage], Outcome]


class Malformed(Exception):
    """A queue payload that is not a delivery message this version understands."""


class RetryLater(Exception):
    """The message could not be delivered yet; the queue should offer it again."""


def deliver_payload(payload: str | bytes, deliver: Deliver) -> Outcome:
    """Parse one queue payload and deliver it; Redis being down counts as RETRY.

    Raises:
        Malformed: bad JSON, a missing field or an unknown schema version (logged here).
    """
    try:
        message = DeliveryMessage.from_json(payload)
    except ValidationError as error:
        # Only the error kinds and places are logged: the payload may hold a sealed code.
        where = ", ".join(f"{e['type']} at {'.'.join(map(str, e['loc']))}" for e in error.errors())
        log.error("malformed delivery message: %s", where[:300])
        raise Malformed(where) from None
    try:
        return deliver(message)
    except Unavailable:
        log.warning("code store unavailable; will retry", extra={"request_id": message.request_id})
        return Outcome.RETRY


def _deliverer() -> Deliver:
    from smscode import bootstrap, ssm

    ssm.load_parameters()
    # Built here, on the calling thread, so ten worker threads never race to build it.
    return bootstrap.deliverer().deliver


def _record_ok(record: Mapping[str, Any], deliver: Deliver) -> bool:
    try:
        return deliver_payload(record["body"], deliver) is not Outcome.RETRY
    except Malformed:
        return False  # reported: after maxReceiveCount it rests in the DLQ for a human to read
    except Exception as error:
        # A bug must not lose the message or fail its neighbours: keep it for a retry.
        log.error("delivery crashed: %s", type(error).__name__)
        return False


def handle_sqs_batch(event: Mapping[str, Any], deliver: Deliver | None = None) -> dict[str, Any]:
    """Deliver an SQS batch concurrently; answer the records to retry as `batchItemFailures`.

    Records are independent (each FIFO message is its own group), so they run at once on
    a thread pool: ten slow provider calls take the time of one.
    """
    records: Sequence[Mapping[str, Any]] = event.get("Records") or []
    if not records:
        return {"batchItemFailures": []}
    if deliver is None:
        try:
            deliver = _deliverer()
        except SettingsError as error:
            # Misconfigured: every record goes back (and on to the DLQ), one clear log line.
            log.error("settings: %s", error)
            return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in records]}
    with ThreadPoolExecutor(max_workers=min(MAX_THREADS, len(records))) as pool:
        results = list(pool.map(lambda record: _record_ok(record, deliver), records))
    failures = [r["messageId"] for r, ok in zip(records, results, strict=True) if not ok]
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failures]}


def handle_pubsub(data: Mapping[str, Any], deliver: Deliver | None = None) -> Outcome | None:
    """Deliver the message of one Pub/Sub push (a CloudEvent's `data`).

    Returns the outcome, or None for a malformed message, which is logged and acknowledged:
    Pub/Sub would otherwise redeliver it forever (use a dead-letter topic to keep it).

    Raises:
        RetryLater: the outcome is RETRY; the push answers an error so Pub/Sub redelivers.
    """
    try:
        payload = base64.b64decode(data["message"]["data"], validate=True)
    except (KeyError, TypeError, binascii.Error, ValueError):
        log.error("malformed Pub/Sub push: no base64 message.data")
        return None
    try:
        outcome = deliver_payload(payload, deliver or _deliverer())
    except Malformed:
        return None
    except SettingsError as error:
        log.error("settings: %s", error)
        raise RetryLater("not configured") from None
    if outcome is Outcome.RETRY:
        raise RetryLater("delivery will be retried")
    return outcome


def handle_cloud_event(event: Any) -> None:
    """A functions-framework CloudEvent target: a Pub/Sub push through `handle_pubsub`.

    Raises:
        werkzeug.exceptions.ServiceUnavailable: on RETRY. An HTTP error is answered as a 503
            without Flask logging a traceback; Pub/Sub redelivers any non-2xx with backoff.
    """
    try:
        handle_pubsub(event.data)
    except RetryLater:
        from werkzeug.exceptions import ServiceUnavailable

        raise ServiceUnavailable("Delivery will be retried.") from None
