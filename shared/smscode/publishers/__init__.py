"""Queue publishers: how an accepted send reaches a delivery worker."""

from __future__ import annotations

from typing import Protocol

from smscode.messages import DeliveryMessage


class PublishError(Exception):
    """The message could not be queued (broker down, queue missing, timeout)."""


class Publisher(Protocol):
    """Queues one message for delivery, at least once.

    Raises:
        PublishError: when the message was not queued; the caller undoes the send.
    """

    def publish(self, message: DeliveryMessage) -> None:
        """Queue the message or raise PublishError."""
        ...
