"""The HTTP function: issue, rate-limit, verify and publish (functions-framework `handle`)."""

from typing import Any

import functions_framework
from werkzeug.exceptions import HTTPException

from smscode.lambda_http import handle_event
from smscode.metrics import flush_emf
from smscode.web import handle_flask, handle_flask_error

# Werkzeug's own 4xx answers (paths its router cannot match) in the contract's JSON shape.
functions_framework.errorhandler(HTTPException)(handle_flask_error)


@functions_framework.http
def handle(request: Any) -> tuple[bytes, int, dict[str, str]]:
    """Every route of the contract's HTTP API."""
    return handle_flask(request)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The same routes behind API Gateway (HTTP API, payload 2.0) on AWS Lambda."""
    try:
        return handle_event(event)
    finally:
        flush_emf()  # this invocation's counters, as CloudWatch embedded metrics
