"""The cloud shape on one machine: moto as SQS, and a poller driving the Lambda SQS handler."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

log = logging.getLogger("smscode.cloud_dev")

REGION = "us-east-1"
QUEUE_NAME = "smscode-deliveries"
# The same numbers serverless.yml gives the real queue, except the visibility timeout:
# a failed record comes back after it, and half a minute keeps a local retry watchable.
MAX_RECEIVE_COUNT = 5
BATCH_SIZE = 10
WAIT_SECONDS = 20
VISIBILITY_TIMEOUT = 30
Handler = Callable[[dict[str, Any], Any], Any]


def lambda_handler() -> Handler:
    """The delivery function's Lambda handler, as serverless.yml names it."""
    from smscode.entrypoints.sqs import lambda_handler as handler

    return handler


def to_record(message: MessageTypeDef, queue_arn: str) -> dict[str, Any]:
    """One SQS message in the shape Lambda's SQS event source hands to the function."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {},
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": queue_arn.split(":")[3],
    }


def failed_ids(result: Any, ids: Sequence[str]) -> set[str]:
    """The records Lambda would return to the queue for this handler result.

    As Lambda reads a partial batch response: None, `{}` or an empty list is full success;
    anything it cannot read (an unknown id, an empty id, a wrong shape) fails the batch.
    """
    if result is None:
        return set()
    if not isinstance(result, Mapping):
        return set(ids)
    failures = result.get("batchItemFailures") or []
    if not isinstance(failures, list):
        return set(ids)
    failed = set()
    for failure in failures:
        item = failure.get("itemIdentifier") if isinstance(failure, Mapping) else None
        if not item or item not in ids:
            return set(ids)
        failed.add(item)
    return failed


class LocalCloud:
    """A moto server with the delivery queue and its DLQ, and a Lambda-like poller."""

    def __init__(
        self,
        *,
        visibility_timeout: int = VISIBILITY_TIMEOUT,
        max_receive_count: int = MAX_RECEIVE_COUNT,
        wait_seconds: int = WAIT_SECONDS,
        batch_size: int = BATCH_SIZE,
        queue_name: str = QUEUE_NAME,
    ) -> None:
        self.visibility_timeout = visibility_timeout
        self.max_receive_count = max_receive_count
        self.wait_seconds = wait_seconds
        self.batch_size = batch_size
        self.queue_name = queue_name
        self.endpoint = ""
        self.queue_url = ""
        self.dlq_url = ""
        self.queue_arn = ""
        self._server: Any = None
        self._sqs: SQSClient | None = None
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    @property
    def env(self) -> dict[str, str]:
        """What `smscode serve` needs to publish here, as a deployed function would."""
        return {
            "DELIVERY_BACKEND": "sqs",
            "SQS_QUEUE_URL": self.queue_url,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": REGION,
            # moto takes any key; these keep boto3 from looking for real credentials
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }

    @property
    def sqs(self) -> SQSClient:
        """A client on the local endpoint (independent of the process environment)."""
        assert self._sqs is not None, "start() first"
        return self._sqs

    def start(self) -> LocalCloud:
        """Start moto on a free loopback port and create the DLQ, then the queue."""
        import boto3
        from moto.server import ThreadedMotoServer

        # werkzeug would log every SQS call once our JSON handler is on the root logger
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        self._sqs = boto3.session.Session().client(
            "sqs",
            region_name=REGION,
            endpoint_url=self.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106
        )
        self.dlq_url = self.sqs.create_queue(QueueName=f"{self.queue_name}-dlq")["QueueUrl"]
        dlq_arn = self._arn(self.dlq_url)
        redrive = json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": self.max_receive_count}
        )
        self.queue_url = self.sqs.create_queue(
            QueueName=self.queue_name,
            Attributes={
                "VisibilityTimeout": str(self.visibility_timeout),
                "RedrivePolicy": redrive,
            },
        )["QueueUrl"]
        self.queue_arn = self._arn(self.queue_url)
        return self

    def _arn(self, queue_url: str) -> str:
        answer = self.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        return answer["Attributes"]["QueueArn"]

    def poll_once(self, handler: Handler, wait_seconds: int | None = None) -> int:
        """One turn of Lambda's poller: receive a batch, invoke, delete what succeeded.

        Failed records are left alone: they come back after the visibility timeout, and
        SQS moves one to the DLQ once it has been received `maxReceiveCount` times.
        Returns the number of records handed to the handler.
        """
        wait = self.wait_seconds if wait_seconds is None else wait_seconds
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch_size,
            WaitTimeSeconds=wait,
            MessageSystemAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return 0
        event = {"Records": [to_record(message, self.queue_arn) for message in messages]}
        ids = [message["MessageId"] for message in messages]
        try:
            failed = failed_ids(handler(event, None), ids)
        except Exception as error:  # as on Lambda: an error fails the whole batch
            log.error("delivery function raised %s; the batch returns", type(error).__name__)
            failed = set(ids)
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
                ],
            )
        return len(messages)

    def start_poller(self, handler: Handler | None = None) -> None:
        """Poll in a background thread until stop(), as Lambda's event source mapping does."""
        run = handler or lambda_handler()

        def loop() -> None:
            while not self._stop.is_set():
                try:
                    self.poll_once(run)
                except Exception as error:
                    if self._stop.is_set():
                        return
                    log.error("poller: %s", type(error).__name__)
                    self._stop.wait(1)

        self._poller = threading.Thread(target=loop, name="smscode-sqs-poller", daemon=True)
        self._poller.start()

    def stop(self) -> None:
        """Stop the poller, then moto; a long poll in flight is cut short by the server going."""
        self._stop.set()
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._poller is not None:
            self._poller.join(timeout=5)
