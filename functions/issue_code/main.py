"""The HTTP function: issue, rate-limit, verify and publish (functions-framework `handle`)."""

from typing import Any

import functions_framework

from smscode.lambda_http import handle_event
from smscode.web import handle_flask


@functions_framework.http
def handle(request: Any) -> tuple[bytes, int, dict[str, str]]:
    """Every route of the contract's HTTP API."""
    return handle_flask(request)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The same routes behind API Gateway (HTTP API, payload 2.0) on AWS Lambda."""
    return handle_event(event)
