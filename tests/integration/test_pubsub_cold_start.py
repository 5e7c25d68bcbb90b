"""DELIVERY_BACKEND=pubsub keeps the Pub/Sub client off the HTTP function's cold start.

It runs a fresh interpreter (a cold start cannot be had in this one), so it is not a unit test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_the_http_function_imports_the_pubsub_client_only_when_it_first_publishes() -> None:
    # the HTTP function loaded and its send use case built, as on a cold start
    script = (
        "import sys, functions.issue_code.main\n"
        "from smscode import bootstrap\n"
        "bootstrap.sender()\n"
        "print(sorted(m for m in sys.modules if m.startswith(('google.cloud.pubsub', 'grpc'))))\n"
    )
    env = {
        **os.environ,
        "REDIS_URL": "redis://127.0.0.1:9/0",
        "CODE_SECRET": "s3cret-code-key-0123456789abcdef",
        "DELIVERY_BACKEND": "pubsub",
        "PUBSUB_TOPIC": "projects/p-1/topics/smscode-deliveries",
    }
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).parents[2],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "[]"
