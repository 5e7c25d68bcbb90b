"""Mainland-China mobile numbers: parsing to E.164 with `phonenumbers`, and masking for logs."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

from smscode.domain.errors import InvalidPhone

# phonenumbers reads letters as keypad digits ("1-800-FLOWERS"); a verification form never
# wants that, so anything but digits, "+" and common separators is refused before parsing.
_ALLOWED = re.compile(r"^\+?[0-9][0-9 ()\-.]{3,30}$")


@lru_cache(maxsize=4096)  # a phone asking again (a resend, a 429, a verify) is parsed once
def normalize(raw: str) -> str:
    """Return the E.164 form (`+8613800138000`) of a mainland-China mobile number.

    Raises:
        InvalidPhone: for fixed lines, short numbers, other countries and garbage.
    """
    text = raw.strip()
    if not _ALLOWED.match(text):
        raise InvalidPhone("The phone number is not a mainland China mobile number.")
    try:
        number = phonenumbers.parse(text, "CN")
    except NumberParseException:
        raise InvalidPhone("The phone number is not a mainland China mobile number.") from None
    # A MOBILE type under +86 implies a valid CN number (the type is only ever matched
    # against CN's metadata, the one region of +86): one metadata walk, not two.
    if number.country_code != 86 or phonenumbers.number_type(number) != PhoneNumberType.MOBILE:
        raise InvalidPhone("The phone number is not a mainland China mobile number.")
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def require_allowed(e164: str, prefixes: Iterable[str]) -> None:
    """Refuse a destination outside SEND_ALLOWED_PREFIXES (sends to it would cost money).

    Raises:
        InvalidPhone: the number starts with none of the prefixes.
    """
    if not e164.startswith(tuple(prefixes)):
        raise InvalidPhone("Codes cannot be sent to this phone number.")


def national(e164: str) -> str:
    """The 11-digit national number Ronglian expects in `to` (`13800138000`)."""
    return e164.removeprefix("+86")


def mask(e164: str) -> str:
    """The number with its middle four digits hidden (`+86138****8000`), for logs and answers."""
    return f"{e164[:6]}****{e164[-4:]}"
