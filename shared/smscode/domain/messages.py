"""The queue message: one accepted send, versioned, carrying its code sealed."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from smscode.domain import purposes


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("must carry a time zone")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]


class DeliveryMessage(BaseModel):
    """What the HTTP function queues and every delivery driver consumes.

    `message_id` is 32 hex digits: it is the idempotency key of the delivery and, as is,
    the key a provider deduplicates on (Ronglian's `reqId`). `sealed_code` holds the code
    sealed (see `sealing`); only the delivery use case opens it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1] = 1
    message_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    request_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    phone: str = Field(pattern=r"^\+861[0-9]{10}$")
    # Written by earlier releases (the provider now keeps its own template); read and ignored
    # so that messages queued before an upgrade are still delivered.
    template_id: str | None = Field(default=None, pattern=r"^[0-9]{1,20}$", exclude=True)
    sealed_code: str = Field(min_length=1, max_length=200)
    minutes: int = Field(ge=1)
    created_at: AwareDatetime
    expires_at: AwareDatetime
    # Which code key the delivery checks. Absent on messages of earlier releases: "login".
    purpose: str = Field(default=purposes.DEFAULT, pattern=r"^[a-z0-9_-]{1,32}$")

    @model_serializer(mode="wrap")
    def _omit_default_purpose(self, handler: SerializerFunctionWrapHandler) -> Any:
        # A default-purpose message is written as before, so a worker of the previous
        # release (which refuses unknown fields) still delivers it during an upgrade.
        data = handler(self)
        if data.get("purpose") == purposes.DEFAULT:
            del data["purpose"]
        return data

    def to_json(self) -> str:
        """The wire form, for SQS, Pub/Sub and Celery alike."""
        return self.model_dump_json()

    @classmethod
    def from_json(cls, data: str | bytes) -> DeliveryMessage:
        """Parse the wire form; raises pydantic.ValidationError on anything unexpected."""
        return cls.model_validate_json(data)
