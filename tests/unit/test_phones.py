"""Phone normalisation: every accepted spelling maps to one E.164 number; others are refused."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smscode.domain import phones
from smscode.domain.errors import InvalidPhone

E164_CN_MOBILE = re.compile(r"^\+861\d{10}$")
_BLOCKS = ("130", "133", "135", "138", "139", "150", "158", "176", "180", "186", "189", "199")


def _valid(national: str) -> bool:
    try:
        phones.normalize(national)
    except InvalidPhone:
        return False
    return True


nationals = st.builds(
    lambda block, rest: block + rest,
    st.sampled_from(_BLOCKS),
    st.text("0123456789", min_size=8, max_size=8),
).filter(_valid)


@given(nationals)
def test_national_e164_and_86_forms_normalise_alike(national: str) -> None:
    e164 = phones.normalize(national)
    assert phones.normalize(f"+86{national}") == e164
    assert phones.normalize(f"86{national}") == e164
    assert phones.normalize(e164) == e164  # idempotent
    assert e164 == f"+86{national}"
    assert phones.national(e164) == national


@given(nationals, st.sampled_from([" ", "-", "."]))
def test_separators_and_padding_are_ignored(national: str, sep: str) -> None:
    spaced = f" {national[:3]}{sep}{national[3:7]}{sep}{national[7:]} "
    assert phones.normalize(spaced) == phones.normalize(national)


@given(st.text(max_size=40))
def test_any_accepted_input_is_one_mainland_mobile_in_e164(raw: str) -> None:
    try:
        e164 = phones.normalize(raw)
    except InvalidPhone:
        return
    assert E164_CN_MOBILE.match(e164)
    assert phones.normalize(e164) == e164


@given(st.from_regex(r"\+?(86)?1[0-9]{10}", fullmatch=True))
def test_digit_strings_either_normalise_or_are_refused_cleanly(raw: str) -> None:
    try:
        e164 = phones.normalize(raw)
    except InvalidPhone:
        return
    assert E164_CN_MOBILE.match(e164)
    assert e164.endswith(raw[-10:])


@pytest.mark.parametrize(
    "raw",
    ["010 12345678", "+1 650 253 0000", "+852 6123 4567", "1-800-FLOWERS", "12345", "", "１３８"],
)
def test_not_a_mainland_mobile_is_refused(raw: str) -> None:
    with pytest.raises(InvalidPhone):
        phones.normalize(raw)


@given(nationals)
def test_mask_hides_the_middle_digits(national: str) -> None:
    masked = phones.mask(phones.normalize(national))
    assert masked == f"+86{national[:3]}****{national[-4:]}"


def test_allowed_prefixes_gate_destinations() -> None:
    phones.require_allowed("+8613800138000", ("+861",))
    phones.require_allowed("+8613800138000", ("+86139", "+86138"))
    with pytest.raises(InvalidPhone):
        phones.require_allowed("+8613800138000", ("+86139",))
    with pytest.raises(InvalidPhone):
        phones.require_allowed("+8613800138000", ())
