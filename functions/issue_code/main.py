"""The HTTP function: issue, rate-limit, verify and publish (functions-framework `handle`)."""

from typing import Any

import functions_framework

from smscode.web import handle_flask


@functions_framework.http
def handle(request: Any) -> tuple[bytes, int, dict[str, str]]:
    """Every route of the contract's HTTP API."""
    return handle_flask(request)
