"""The Pub/Sub CloudEvent function (`messagePublished`, as Eventarc delivers it) over the intake."""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Mapping
from typing import Any

import functions_framework

from smscode.domain.outcomes import Outcome
from smscode.entrypoints.intake import deliver_all
from smscode.service_layer.intake import Deliver

log = logging.getLogger("smscode.pubsub")


class RetryLater(Exception):
    """The message could not be delivered yet; Pub/Sub should offer it again."""


def handle_pubsub(data: Mapping[str, Any], deliver: Deliver | None = None) -> Outcome:
    """Deliver the message of one Pub/Sub push (a CloudEvent's `data`).

    A malformed message is logged and acknowledged (MALFORMED), as is one the provider
    refused for good: no retry can help, and Pub/Sub would offer it again until its
    dead-letter policy gives up. The log line is what a human reads.

    Raises:
        RetryLater: the outcome is RETRY.
    """
    try:
        payload = base64.b64decode(data["message"]["data"], validate=True)
    except (KeyError, TypeError, binascii.Error, ValueError):
        log.error("malformed Pub/Sub push: no base64 message.data")
        return Outcome.MALFORMED
    [outcome] = deliver_all([payload], deliver)
    if outcome is Outcome.RETRY:
        raise RetryLater("delivery will be retried")
    return outcome


@functions_framework.cloud_event
def deliver(event: Any) -> None:
    """The delivery function: one Pub/Sub `messagePublished` CloudEvent (Eventarc).

    Raises:
        werkzeug.exceptions.ServiceUnavailable: on RETRY. An HTTP error is answered as a 503
            without Flask logging a traceback; Pub/Sub redelivers any non-2xx with backoff.
    """
    try:
        handle_pubsub(event.data)
    except RetryLater:
        from werkzeug.exceptions import ServiceUnavailable

        raise ServiceUnavailable("Delivery will be retried.") from None
