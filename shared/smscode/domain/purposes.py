"""What a code is for (`purpose`): a code verifies only for the purpose it was sent for."""

from __future__ import annotations

import re

from smscode.domain.errors import InvalidRequest

DEFAULT = "login"
_PATTERN = re.compile(r"[a-z0-9_-]{1,32}")


def check(purpose: str) -> str:
    """The purpose, if well formed.

    Raises:
        InvalidRequest: not 1-32 of a-z, 0-9, `_` and `-`.
    """
    if not _PATTERN.fullmatch(purpose):
        raise InvalidRequest("The field 'purpose' must be 1-32 characters of a-z, 0-9, _ and -.")
    return purpose
