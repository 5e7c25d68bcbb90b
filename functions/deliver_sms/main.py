"""The delivery function: SQS batches on AWS Lambda, Pub/Sub CloudEvents on functions-framework."""

from typing import Any

import functions_framework
from cloudevents.http import CloudEvent

from smscode.batch import handle_cloud_event, handle_sqs_batch
from smscode.metrics import flush_emf


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda SQS event source (ReportBatchItemFailures): the partial batch response."""
    try:
        return handle_sqs_batch(event)
    finally:
        flush_emf()  # this invocation's counters, as CloudWatch embedded metrics


@functions_framework.cloud_event
def deliver(cloud_event: CloudEvent) -> None:
    """Pub/Sub push (google.cloud.pubsub.topic.v1.messagePublished); raises to be redelivered."""
    handle_cloud_event(cloud_event)
