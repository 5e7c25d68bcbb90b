"""What smscode's Redis worker reads from a Celery envelope: payload, retries, ETA."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from smscode.adapters.publishers.celery_wire import redis_envelope, task_message
from smscode.adapters.redis_queue import Taken
from smscode.entrypoints.redis_worker import parse_task


def test_a_delivery_task_gives_its_payload_now() -> None:
    envelope = redis_envelope(task_message("smscode.deliver", ['{"m": 1}']), "celery")
    task = parse_task(Taken("tag-1", envelope), 7)
    assert (task.payload, task.retries, task.due, task.tag) == ('{"m": 1}', 0, 0.0, "tag-1")


def test_a_stock_workers_retry_waits_for_its_eta() -> None:
    # given the task as a stock worker's retry publishes it: retries counted, an ETA set
    raw = json.loads(redis_envelope(task_message("smscode.deliver", ['{"m": 1}']), "celery"))
    eta = datetime(2030, 1, 1, 12, 0, 0, 500000, tzinfo=UTC)
    raw["headers"] |= {"retries": 3, "eta": eta.isoformat()}
    task = parse_task(Taken("tag-2", json.dumps(raw)), 8)
    assert task.retries == 3
    assert task.due == eta.timestamp()


@pytest.mark.parametrize(
    "envelope",
    [
        "not json",
        '{"properties": {}}',
        redis_envelope(task_message("other.task", ["x"]), "celery"),
        redis_envelope(task_message("smscode.deliver", ["a", "b"]), "celery"),
    ],
)
def test_anything_else_is_refused(envelope: str) -> None:
    with pytest.raises((ValueError, KeyError, TypeError, AttributeError)):
        parse_task(Taken("t", envelope), 1)
