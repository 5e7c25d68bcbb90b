"""The `console` provider: prints each SMS, code included, for `make dev` and demos."""

from __future__ import annotations

import sys
import threading

from smscode.domain.outcomes import Result, Sent, Sms
from smscode.service_layer.ports import Lease


class ConsoleProvider:
    """Prints one line per SMS to stdout; the only place a code is ever shown in clear."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def send(self, sms: Sms, lease: Lease) -> Result:
        """Print the SMS and report it sent (at once: no deadline to mind)."""
        line = (
            f"[smscode console] SMS to {sms.to}: your code is {sms.code} (valid {sms.minutes} min)"
        )
        with self._lock:
            print(line, file=sys.stdout, flush=True)
        return Sent(sid=f"console-{sms.key}", provider="console")
