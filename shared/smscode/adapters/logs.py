"""Logging as one JSON object per line, with the request id and the masked phone."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

_FIELDS = ("request_id", "phone", "status_code", "outcome", "provider", "circuit")


class JsonFormatter(logging.Formatter):
    """Formats a record as JSON; exceptions as their type and message, never a stack trace."""

    def format(self, record: logging.LogRecord) -> str:
        """One line of JSON."""
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in _FIELDS:
            value = getattr(record, name, None)
            if value not in (None, ""):
                entry[name] = value
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            entry["error"] = f"{type(error).__name__}: {error}"[:300]
        return json.dumps(entry, ensure_ascii=False)


def setup(level: str) -> None:
    """Send every log line to stderr as JSON, at `level`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Library warnings (Celery's root-user notice, deprecations) become JSON lines too.
    logging.captureWarnings(True)
