"""Fresh phone numbers for load runs: every run gets numbers no earlier run used."""

from __future__ import annotations

# Blocks in which phonenumbers accepts every 11-digit number as a valid mobile.
_BLOCKS = (130, 131, 132, 133, 135, 136, 137, 138, 139, 150, 151, 152, 153, 155, 156, 157)
_PER_RUN = 2_000_000  # wrk: two threads, a million numbers each (see wrk/codes.lua)


class PhoneBases:
    """Hands out the first number of a fresh range of `_PER_RUN` numbers, run after run."""

    def __init__(self) -> None:
        self._next = 0

    def next_base(self) -> int:
        """The base of a range nobody used yet in this process."""
        per_block = 100_000_000 // _PER_RUN
        block, slot = divmod(self._next, per_block)
        self._next += 1
        return _BLOCKS[block] * 100_000_000 + slot * _PER_RUN
