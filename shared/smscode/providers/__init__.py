"""SMS providers: the interface and the four kinds of result a send can have."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Sent:
    """The provider accepted the SMS (or, for a repeated reqId, had accepted it before)."""

    sid: str
    repeat: bool = False
    status_code: str = ""  # the provider's own success code, for the log line


@dataclass(frozen=True)
class NotSent:
    """The SMS surely did not go out (no connection, or a retryable refusal): retry."""

    reason: str
    status_code: str = ""


@dataclass(frozen=True)
class MaybeSent:
    """The request went out but no usable answer came back: retry with the same reqId."""

    reason: str
    status_code: str = ""


@dataclass(frozen=True)
class Failed:
    """A permanent refusal (number, template, account, balance, caps): never retried."""

    reason: str
    status_code: str = ""


Result = Sent | NotSent | MaybeSent | Failed


class Provider(Protocol):
    """Sends one templated SMS; never raises for a provider or network failure."""

    def send(self, *, to: str, template_id: str, datas: list[str], req_id: str) -> Result:
        """Send `datas` with template `template_id` to `to` (E.164), keyed by `req_id`."""
        ...
