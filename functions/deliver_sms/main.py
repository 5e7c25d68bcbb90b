"""The delivery function on functions-framework: Pub/Sub `messagePublished` CloudEvents."""

from smscode.entrypoints.pubsub import deliver

__all__ = ["deliver"]
