"""The HTTP function on functions-framework (Cloud Run functions, `smscode serve`): `handle`."""

from smscode.entrypoints.flask_app import handle

__all__ = ["handle"]
