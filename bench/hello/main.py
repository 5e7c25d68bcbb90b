"""The reference function: hello world, served by the same functions-framework server."""

from typing import Any

import functions_framework


@functions_framework.http
def hello(request: Any) -> str:
    """Answer every request with a fixed text, reading nothing."""
    return "Hello, World!"
