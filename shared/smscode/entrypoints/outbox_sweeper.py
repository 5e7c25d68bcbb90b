"""The outbox sweeper both delivery workers run: a message the broker lost is queued again."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from smscode.bootstrap import store
from smscode.settings import Settings

log = logging.getLogger("smscode.worker")


def sweep_outbox(push: Callable[[str], None], settings: Settings, stop: threading.Event) -> None:
    """Queue again every message still not final a recheck period after it was last queued.

    A broker can lose a task (kombu's Redis transport, when a worker dies between taking a
    task and recording it as unacknowledged). Each overdue message is handed to one sweeper
    per period; delivery is idempotent, so a copy of a message that was only slow is harmless.
    A message pinned to a provider these workers do not list is left for those that do.
    """
    recheck_ms = settings.delivery_recheck_seconds * 1000
    pause = min(5.0, settings.delivery_recheck_seconds / 2)
    while not stop.wait(pause):
        try:
            payloads = store().sweep(recheck_ms, settings.providers)
            for payload in payloads:
                push(payload)
        except Exception as error:  # Redis or the broker down: try again next period
            log.warning("outbox sweep failed: %s", type(error).__name__)
            continue
        if payloads:
            log.warning("queued %d overdue messages again", len(payloads))
