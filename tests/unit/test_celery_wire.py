"""The hand-built Celery message: every field a stock worker needs, a fresh tag per envelope."""

from __future__ import annotations

import base64
import json

from smscode.adapters.publishers.celery_wire import redis_envelope, task_message


def test_the_redis_envelope_carries_what_a_worker_loses_the_message_without() -> None:
    message = task_message("smscode.deliver", ['{"payload": 1}'], task_id="t-1")
    first = json.loads(redis_envelope(message, "q1"))
    second = json.loads(redis_envelope(message, "q1"))
    # the body is the three-item [args, kwargs, embed] list a worker unpacks
    args, kwargs, embed = json.loads(base64.b64decode(first["body"]))
    assert (args, kwargs) == (['{"payload": 1}'], {})
    assert set(embed) == {"callbacks", "errbacks", "chain", "chord"}
    assert first["headers"]["id"] == first["headers"]["root_id"] == "t-1"
    assert first["headers"]["task"] == "smscode.deliver"
    assert first["content-type"] == "application/json"
    properties = first["properties"]
    assert properties["delivery_info"] == {"exchange": "", "routing_key": "q1"}
    assert properties["body_encoding"] == "base64"
    # a new delivery tag per envelope: two copies of one task must not share unacked slots
    assert properties["delivery_tag"] != second["properties"]["delivery_tag"]
    # the payload (a sealed code) is not repeated in the worker's log line
    assert first["headers"]["argsrepr"] == ""
