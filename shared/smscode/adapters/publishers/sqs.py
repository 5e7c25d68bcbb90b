"""Publishes delivery messages to an SQS queue (standard or FIFO); boto3 is imported lazily."""

from __future__ import annotations

import logging
import re
import threading
from typing import TYPE_CHECKING, Any

from smscode.domain.messages import DeliveryMessage
from smscode.service_layer.ports import PublishError

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

# https://sqs.<region>.amazonaws.com/<account>/<name>: the region when boto3 has none configured.
_REGION_IN_URL = re.compile(r"^https?://sqs[.-]([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/")


def make_client(region_hint: str | None = None) -> SQSClient:
    """An SQS client that fails fast; AWS_ENDPOINT_URL (moto, LocalStack) is read by boto3 itself.

    One short retry rides over a dropped connection; the connect and read timeouts keep a
    dead endpoint to a few seconds, so the HTTP function answers 503 instead of hanging.
    """
    import boto3
    from botocore.config import Config

    # botocore logs where it found credentials and endpoints at INFO: noise on every cold start
    logging.getLogger("botocore").setLevel(logging.WARNING)
    session = boto3.session.Session()
    region = session.region_name or region_hint or "us-east-1"
    config = Config(
        connect_timeout=2, read_timeout=5, retries={"max_attempts": 2, "mode": "standard"}
    )
    return session.client("sqs", region_name=region, config=config)


def region_of(queue_url: str) -> str | None:
    """The region an AWS queue URL names, or None (moto and LocalStack URLs name none)."""
    match = _REGION_IN_URL.match(queue_url)
    return match[1] if match else None


class SqsPublisher:
    """Sends each message as one SQS message; one client per process, made on first publish."""

    def __init__(self, queue_url: str) -> None:
        self._queue_url = queue_url
        self._fifo = queue_url.endswith(".fifo")
        self._client: Any = None
        self._lock = threading.Lock()  # gunicorn threads may publish the very first message at once

    def _sqs(self) -> SQSClient:
        with self._lock:
            if self._client is None:
                self._client = make_client(region_of(self._queue_url))
            client: SQSClient = self._client
            return client

    def publish(self, message: DeliveryMessage) -> None:
        """Queue the message or raise PublishError."""
        extra: dict[str, Any] = {}
        if self._fifo:
            # Deduplication on the message id drops a publisher's retry within SQS's 5-minute
            # window; one group per message keeps FIFO from serialising unrelated phones.
            extra = {
                "MessageDeduplicationId": message.message_id,
                "MessageGroupId": message.message_id,
            }
        try:
            self._sqs().send_message(
                QueueUrl=self._queue_url, MessageBody=message.to_json(), **extra
            )
        except Exception as error:  # botocore raises ClientError, EndpointConnectionError, ...
            raise PublishError(f"SQS unavailable: {type(error).__name__}") from error
