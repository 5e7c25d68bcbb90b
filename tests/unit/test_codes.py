"""Codes: always CODE_LENGTH digits, uniformly drawn, and stored only as a phone-bound HMAC."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from smscode.domain import codes

DRAWS = 100_000
# Chi-square critical values at p = 0.001 (from tables), so a fair generator fails 1 run in 1000.
CHI2_CRITICAL_999 = {9: 27.877, 36: 67.985}


def chi_square(counts: Counter[int], categories: int, draws: int) -> float:
    expected = draws / categories
    return sum((counts.get(k, 0) - expected) ** 2 / expected for k in range(categories))


@given(st.integers(min_value=4, max_value=10))
def test_codes_are_always_code_length_digits(length: int) -> None:
    for _ in range(50):
        code = codes.generate_code(length)
        assert len(code) == length
        assert code.isdigit()
        assert code.isascii()


def test_each_digit_position_is_uniform() -> None:
    draws = [codes.generate_code(6) for _ in range(DRAWS)]
    for position in (0, 5):  # the leading digit would suffer first from a lost zero-pad
        counts = Counter(int(code[position]) for code in draws)
        assert chi_square(counts, 10, DRAWS) < CHI2_CRITICAL_999[9], counts


def test_codes_mod_37_are_uniform() -> None:
    # 37 is prime to 10: a bias in how digits combine shows up here even if each digit is fair.
    counts = Counter(int(codes.generate_code(6)) % 37 for _ in range(DRAWS))
    # 10^6 is not a multiple of 37, so residues 0..26 are 1/27027 more likely: far below noise.
    assert chi_square(counts, 37, DRAWS) < CHI2_CRITICAL_999[36], counts


def test_hash_binds_the_phone_and_hides_the_code() -> None:
    secret = b"k" * 32
    digest = codes.hash_code(secret, "+8613800138000", "123456")
    assert "123456" not in digest
    assert digest != codes.hash_code(secret, "+8613900139000", "123456")
    assert digest != codes.hash_code(b"j" * 32, "+8613800138000", "123456")
    assert digest == codes.hash_code(secret, "+8613800138000", "123456")
