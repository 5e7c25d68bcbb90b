"""Helpers for the cloud-path tests: sample events with a fresh phone, a moto SQS per test."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

from smscode_dev.cloud import LocalCloud

EVENTS = Path(__file__).parent / "events"
SAMPLE_PHONE = "13800138000"


def load_event(name: str, phone: str | None = None) -> dict[str, Any]:
    """A sample event from tests/events, its sample phone replaced (in a base64 body too)."""
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    if phone is not None and event.get("body"):
        if event.get("isBase64Encoded"):
            body = base64.b64decode(event["body"]).decode().replace(SAMPLE_PHONE, phone)
            event["body"] = base64.b64encode(body.encode()).decode()
        else:
            event["body"] = event["body"].replace(SAMPLE_PHONE, phone)
    return event


def event_body(event: dict[str, Any]) -> bytes:
    """The raw body bytes an API Gateway event carries."""
    body = event.get("body") or ""
    return base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()


def api_event(method: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    """An HTTP API 2.0 event for any route, built on the JSON sample."""
    event = load_event("apigw_post_codes_json.json")
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["routeKey"] = event["requestContext"]["routeKey"] = f"{method} {path}"
    event["body"] = json.dumps(payload) if payload is not None else None
    return event


def new_cloud(**options: int) -> LocalCloud:
    """A LocalCloud on its own moto server and its own queue names (moto state is global)."""
    return LocalCloud(queue_name=f"smscode-{uuid.uuid4().hex[:12]}", **options).start()


def pubsub_cloud_event(payload: str) -> dict[str, Any]:
    """The Pub/Sub CloudEvent sample carrying `payload` as its base64 message.data."""
    event = load_event("pubsub_cloud_event.json")
    event["data"]["message"]["data"] = base64.b64encode(payload.encode()).decode()
    return event


def configure(monkeypatch: Any, env: dict[str, str]) -> None:
    """Put `env` in this process's environment and forget everything built from the old one."""
    from smscode import bootstrap
    from smscode.adapters import ssm

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    bootstrap.reset()
    ssm.load_parameters.cache_clear()


def receive_all(cloud: LocalCloud, count: int) -> list[Any]:
    """Receive `count` messages from the delivery queue (moto may hand them out in parts)."""
    messages: list[Any] = []
    for _ in range(20):
        answer = cloud.sqs.receive_message(
            QueueUrl=cloud.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        )
        messages += answer.get("Messages", [])
        if len(messages) >= count:
            break
    assert len(messages) == count
    return messages
