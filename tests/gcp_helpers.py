"""Helpers for the Google Cloud tests: the delivery function as a process, Eventarc's request."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from smscode_dev.gcp import PubSubEmulator, delivery_subscription, function_argv
from tests.cloud_helpers import configure
from tests.conftest import stack_env
from tests.fakes.ronglian import FakeRonglian
from tests.helpers import Server

DELIVER_SOURCE = Path(__file__).parents[1] / "functions" / "deliver_sms" / "main.py"
MESSAGE_PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"


class DeliveryFunction(Server):
    """`deliver` of functions/deliver_sms/main.py under functions-framework, on a free port."""

    def __init__(self, env: Mapping[str, str]) -> None:
        super().__init__(env)
        self.argv = function_argv(self.port, str(DELIVER_SOURCE))

    def post(self, request: tuple[dict[str, str], bytes]) -> requests.Response:
        """POST one (headers, body) to the function, as Eventarc or a push would."""
        headers, body = request
        return requests.post(f"{self.url}/", headers=headers, data=body, timeout=30)


def new_topic(emulator: PubSubEmulator) -> tuple[str, str]:
    """A topic of its own and a pull subscription on it (names are unique per call)."""
    name = f"smscode-{uuid.uuid4().hex[:12]}"
    topic = emulator.create_topic(name)
    return topic, emulator.create_subscription(f"{name}-pull", topic, ackDeadlineSeconds=60)


def pull_one(emulator: PubSubEmulator, subscription: str, timeout: float = 10) -> dict[str, Any]:
    """The one message the subscription gets within `timeout`, acknowledged."""
    deadline = time.monotonic() + timeout
    while not (messages := emulator.pull(subscription)):
        assert time.monotonic() < deadline, f"nothing arrived on {subscription}"
        time.sleep(0.1)
    [message] = messages
    return message


def eventarc_request(message: Mapping[str, Any], topic: str) -> tuple[dict[str, str], bytes]:
    """A pulled Pub/Sub message as Eventarc POSTs it to a function: a binary-mode CloudEvent."""
    headers = {
        "Content-Type": "application/json",
        "ce-id": message["messageId"],
        "ce-source": f"//pubsub.googleapis.com/{topic}",
        "ce-specversion": "1.0",
        "ce-type": MESSAGE_PUBLISHED,
        "ce-time": message["publishTime"],
    }
    project = topic.split("/")[1]
    body = {
        "message": {
            **message,
            "message_id": message["messageId"],
            "publish_time": message["publishTime"],
        },
        "subscription": f"projects/{project}/subscriptions/eventarc-us-central1-deliver-000",
    }
    return headers, json.dumps(body).encode()


def with_data(request: tuple[dict[str, str], bytes], data: str) -> tuple[dict[str, str], bytes]:
    """The same request carrying other base64 `message.data`."""
    headers, body = request
    event = json.loads(body)
    event["message"]["data"] = data
    return headers, json.dumps(event).encode()


def b64(text: str) -> str:
    """Base64 of the text, as Pub/Sub carries message data."""
    return base64.b64encode(text.encode()).decode()


def pubsub_down(port: int) -> dict[str, str]:
    """Settings aiming DELIVERY_BACKEND=pubsub at a port nobody listens on."""
    return {
        "DELIVERY_BACKEND": "pubsub",
        "PUBSUB_TOPIC": "projects/smscode-local/topics/smscode-deliveries",
        "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{port}",
    }


@contextmanager
def pubsub_backend(request: pytest.FixtureRequest) -> Iterator[None]:
    """This process publishing to a fresh topic on the emulator, which pushes to the delivery
    function (the shape of a backend in the shared Publisher suite)."""
    emulator: PubSubEmulator = request.getfixturevalue("pubsub_emulator")
    redis_url: str = request.getfixturevalue("redis_url")
    fake: FakeRonglian = request.getfixturevalue("fake_ronglian")
    function = DeliveryFunction(stack_env(redis_url, fake)).start()
    try:
        topic = emulator.create_topic(f"smscode-{uuid.uuid4().hex[:12]}")
        delivery_subscription(emulator, topic, function.url, name=f"{topic.split('/')[-1]}-push")
        env = stack_env(
            redis_url,
            fake,
            DELIVERY_BACKEND="pubsub",
            PUBSUB_TOPIC=topic,
            PUBSUB_EMULATOR_HOST=emulator.host,
        )
        configure(request.getfixturevalue("monkeypatch"), env)
        yield
    finally:
        function.stop()
