"""What a code is for (`purpose`): a code verifies only for the purpose it was sent for."""

from __future__ import annotations

import re

from smscode.domain.errors import InvalidRequest

DEFAULT = "login"
# The codes of the Twilio Verify-compatible API. The native routes may not name it, so
# neither API can check (or consume) a code the other sent.
TWILIO = "twilio"
_PATTERN = re.compile(r"[a-z0-9_-]{1,32}")


def check(purpose: str) -> str:
    """The purpose, if well formed.

    Raises:
        InvalidRequest: not 1-32 of a-z, 0-9, `_` and `-`.
    """
    if not _PATTERN.fullmatch(purpose):
        raise InvalidRequest("The field 'purpose' must be 1-32 characters of a-z, 0-9, _ and -.")
    return purpose


def public(purpose: str) -> str:
    """A purpose a caller of the native routes may name: well formed, and not one of ours.

    Raises:
        InvalidRequest.
    """
    if purpose == TWILIO:
        raise InvalidRequest(f"The purpose '{TWILIO}' is reserved for the Twilio Verify API.")
    return check(purpose)
