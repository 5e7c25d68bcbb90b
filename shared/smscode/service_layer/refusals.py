"""A per-process memory of phones the store has just refused, so a repeat costs no round trip.

Only refusals keyed on the phone itself are kept (the resend interval and the phone's daily
cap): those lift only when their Redis key expires, and the store said when that is. A phone
refused by a shared cap (IP, prefix, global) is not kept: another client may still send to it.

Redis lifts a phone's refusal early only through `unissue` (a publish failure in some
process) or by losing its data; a process that remembered the refusal then answers 429 for
at most the `retry_after` it was given, the wait the refused client was told anyway.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from smscode.domain.policy import Rejection

# Refusals worth remembering: they are about the phone, whoever asks.
PHONE_REASONS = frozenset({"resend_interval", "phone_daily"})
MAX_SECONDS = 60


class Refusals:
    """Phone -> (reason, deadline, longest wait), bounded; safe to share between threads.

    `clock` is the use case's (seconds, like time.time); a wait never exceeds the one the
    store gave, even if that clock steps back.
    """

    def __init__(self, size: int = 10_000, clock: Callable[[], float] = time.time) -> None:
        self._size = size
        self._clock = clock
        self._until: OrderedDict[str, tuple[str, float, int]] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, phone: str, rejection: Rejection) -> None:
        """Keep a phone-keyed refusal until, at the latest, the store's key expires.

        `retry_after` is the key's time to live rounded up to a second, so the key lives
        more than `retry_after - 1` seconds: remembering it that long never outlasts it.
        """
        if rejection.reason not in PHONE_REASONS or rejection.retry_after <= 1:
            return
        # At most MAX_SECONDS: an operator who resets a phone's counter in Redis (a support
        # case) sees it take effect everywhere within a minute, not a day.
        longest = min(rejection.retry_after - 1, MAX_SECONDS)
        with self._lock:
            self._until[phone] = (rejection.reason, self._clock() + longest, longest)
            self._until.move_to_end(phone)
            while len(self._until) > self._size:
                self._until.popitem(last=False)

    def check(self, phone: str) -> Rejection | None:
        """The refusal still in force for the phone, its wait counted down; None if none."""
        entry = self._until.get(phone)
        if entry is None:
            return None
        reason, deadline, longest = entry
        left = min(deadline - self._clock(), longest)
        if left <= 0:
            with self._lock:
                if self._until.get(phone) == entry:
                    del self._until[phone]
            return None
        return Rejection(reason=reason, retry_after=math.ceil(left))
