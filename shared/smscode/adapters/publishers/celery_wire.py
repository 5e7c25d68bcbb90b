"""Celery's task message (protocol 2), built by hand so a publish needs no Celery app or Task.

A stock Celery worker consumes these exactly as if `send_task` had sent them; the fields
and the Redis envelope are what Celery 5 / kombu 5 write (celery/app/amqp.py `as_task_v2`,
kombu/transport/virtual/base.py). tests/integration/test_celery_wire.py holds the envelope
and its list against what the installed Celery writes itself, and has a real worker
consume them; pyproject.toml allows only the Celery and kombu minor it passed on. Fields a
worker needs and loses the message without (the envelope's `delivery_tag` and
`delivery_info`, a three-item body) are always set.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import socket
from dataclasses import dataclass
from functools import cache
from typing import Any

# [args, kwargs, embed]: a worker that gets anything but three items exits (poison message).
_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
_ORIGIN = f"smscode@{socket.gethostname()}:{os.getpid()}"
_COMPACT = (",", ":")
_MARK = "\x00id\x00"  # stands for the task id in the pre-encoded headers


@dataclass(frozen=True)
class TaskMessage:
    """One task message: its id, headers (as JSON) and JSON body, ready for any transport."""

    task_id: str
    headers_json: str
    body: bytes

    @property
    def headers(self) -> dict[str, Any]:
        """The headers as a dict, for transports that take one (kombu)."""
        return json.loads(self.headers_json)  # type: ignore[no-any-return]


@cache
def _headers_around_id(task_name: str) -> list[str]:
    """The task's headers as JSON, split where the task id goes (`id` and `root_id`).

    Encoded once per task name: only the id differs between messages, and it is hex.
    """
    headers: dict[str, Any] = {
        "lang": "py", "task": task_name, "id": _MARK, "shadow": None, "eta": None,
        "expires": None, "group": None, "group_index": None, "retries": 0,
        "timelimit": [None, None], "root_id": _MARK, "parent_id": None,
        "argsrepr": "", "kwargsrepr": "{}", "origin": _ORIGIN, "ignore_result": True,
        "replaced_task_nesting": 0, "stamped_headers": None, "stamps": {},
    }  # fmt: skip
    return json.dumps(headers, separators=_COMPACT).split(json.dumps(_MARK)[1:-1])


def task_message(task_name: str, args: list[str], task_id: str | None = None) -> TaskMessage:
    """The protocol-2 message for `task_name(*args)`, without retries, ETA or expiry.

    `argsrepr` is left empty: args may hold a payload a worker's log line need not repeat.
    The id is 32 random hex digits (any unique string is a valid Celery task id).
    """
    task_id = task_id or secrets.token_hex(16)
    before, between, after = _headers_around_id(task_name)
    body = json.dumps([args, {}, _EMBED], separators=_COMPACT).encode()
    return TaskMessage(task_id, f"{before}{task_id}{between}{task_id}{after}", body)


def redis_envelope(message: TaskMessage, queue: str) -> str:
    """What kombu's Redis transport LPUSHes onto the queue's list for this message.

    `delivery_tag` is new for every envelope: the worker keys its unacked bookkeeping on it,
    so two envelopes sharing one would lose one of them to a crash. Written as a template
    (every variable part is hex, base64 or JSON-encoded) to keep the send path cheap.
    """
    body = base64.b64encode(message.body).decode("ascii")
    return (
        f'{{"body":"{body}","content-encoding":"utf-8","content-type":"application/json",'
        f'"headers":{message.headers_json},"properties":{{"correlation_id":"{message.task_id}",'
        f'"reply_to":"","delivery_mode":2,"delivery_info":{{"exchange":"","routing_key":'
        f'{json.dumps(queue)}}},"priority":0,"body_encoding":"base64",'
        f'"delivery_tag":"{secrets.token_hex(16)}"}}}}'
    )


def redis_queue_key(queue: str) -> str:
    """The list a Redis broker keeps a queue's priority-0 messages in: the queue's own name.

    (kombu suffixes other priorities, and a worker reads them all; smscode publishes at 0
    and sets no global key prefix. Checked against kombu in test_celery_wire.py.)
    """
    return queue
