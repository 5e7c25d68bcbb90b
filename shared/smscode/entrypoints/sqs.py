"""The SQS batch handler (Lambda, ReportBatchItemFailures) over the intake."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from smscode.adapters.metrics import flush_emf
from smscode.domain.outcomes import Outcome
from smscode.entrypoints.intake import deliver_all
from smscode.service_layer.intake import Deliver

# Back to the queue: RETRY to be tried again, MALFORMED to rest in the DLQ after
# maxReceiveCount for a human to read.
_FAILED = {Outcome.RETRY, Outcome.MALFORMED}


def handle_sqs_batch(event: Mapping[str, Any], deliver: Deliver | None = None) -> dict[str, Any]:
    """Deliver an SQS batch; answer the records to offer again as `batchItemFailures`."""
    records: Sequence[Mapping[str, Any]] = event.get("Records") or []
    if not records:
        return {"batchItemFailures": []}
    outcomes = deliver_all([record["body"] for record in records], deliver)
    return {
        "batchItemFailures": [
            {"itemIdentifier": record["messageId"]}
            for record, outcome in zip(records, outcomes, strict=True)
            if outcome in _FAILED
        ]
    }


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda handler: one SQS batch, then this invocation's metrics as EMF."""
    try:
        return handle_sqs_batch(event)
    finally:
        flush_emf()
