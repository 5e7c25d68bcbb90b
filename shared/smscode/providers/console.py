"""The `console` provider: prints each SMS, code included, for `make dev` and demos."""

from __future__ import annotations

import sys
import threading

from smscode.providers import Result, Sent


class ConsoleProvider:
    """Prints one line per SMS to stdout; the only place a code is ever shown in clear."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def send(self, *, to: str, template_id: str, datas: list[str], req_id: str) -> Result:
        """Print the SMS and report it sent."""
        code, minutes = [*datas, "", ""][:2]
        line = f"[smscode console] SMS to {to}: your code is {code} (valid {minutes} min)"
        with self._lock:
            print(line, file=sys.stdout, flush=True)
        return Sent(sid=f"console-{req_id}")
