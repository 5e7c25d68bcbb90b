"""Publishes delivery messages to a Pub/Sub topic; google-cloud-pubsub is imported lazily."""

from __future__ import annotations

import threading
from typing import Any

from smscode.domain.messages import DeliveryMessage
from smscode.service_layer.ports import PublishError

# One attempt may take ATTEMPT_SECONDS; transient gRPC errors are retried for RETRY_SECONDS
# in all; RESULT_SECONDS bounds the whole publish. The library's defaults (60 s attempts,
# retries for 10 minutes) would hold a send open long after the client has given up.
ATTEMPT_SECONDS = 1.0
RETRY_SECONDS = 2.0
RESULT_SECONDS = 5.0


def make_client() -> Any:
    """A publisher that sends each message at once and fails within seconds.

    PUBSUB_EMULATOR_HOST (the emulator, anonymous credentials) is read by the library
    itself; without it the client uses Application Default Credentials (the runtime's
    service account on Cloud Run, which needs roles/pubsub.publisher on the topic).
    """
    from google.api_core import exceptions, retry
    from google.cloud import pubsub_v1

    transient = retry.if_exception_type(
        exceptions.Aborted,
        exceptions.DeadlineExceeded,
        exceptions.InternalServerError,
        exceptions.ServiceUnavailable,
    )
    return pubsub_v1.PublisherClient(
        # one message per request, sent now: an HTTP send waits for its own message only
        batch_settings=pubsub_v1.types.BatchSettings(max_messages=1, max_latency=0.0),
        publisher_options=pubsub_v1.types.PublisherOptions(
            retry=retry.Retry(
                initial=0.1, maximum=0.5, multiplier=2.0, timeout=RETRY_SECONDS, predicate=transient
            ),
            timeout=ATTEMPT_SECONDS,
        ),
    )


class PubSubPublisher:
    """Publishes each message to `topic` and waits until Pub/Sub has stored it.

    `publish` returns only once the server acknowledged the message, so an accepted send
    survives the process dying right after it answers 202. A publish the library retried
    after a lost answer can reach the topic twice: delivery is idempotent on the message id.
    The client is made on the first publish, once per process: gRPC channels do not
    survive a fork, and gunicorn forks its workers before any request.
    """

    def __init__(self, topic: str) -> None:
        self._topic = topic  # projects/<project>/topics/<topic>
        self._client: Any = None
        self._lock = threading.Lock()  # gunicorn threads may publish the very first message at once

    def _publisher(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = make_client()
            return self._client

    def publish(self, message: DeliveryMessage) -> None:
        """Publish the message and wait for its id, or raise PublishError."""
        try:
            future = self._publisher().publish(self._topic, message.to_json().encode())
            future.result(timeout=RESULT_SECONDS)
        except Exception as error:  # google.api_core raises NotFound, RetryError, TimeoutError, ...
            raise PublishError(f"Pub/Sub unavailable: {type(error).__name__}") from error
