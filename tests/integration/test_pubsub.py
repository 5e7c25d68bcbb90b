"""DELIVERY_BACKEND=pubsub through the SDK's real emulator, into the CloudEvent function.

The HTTP function (`smscode serve`) publishes with google-cloud-pubsub; `deliver` runs
under functions-framework and is fed either by a push subscription in the emulator (as
Eventarc's subscription pushes) or by the test POSTing pulled messages as Eventarc's
binary-mode CloudEvents. Ronglian is the fake, checking every signature.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import redis
import requests

from smscode import bootstrap
from smscode.adapters.publishers.pubsub import PubSubPublisher
from smscode.domain.messages import DeliveryMessage
from smscode.service_layer.ports import Publisher, PublishError
from smscode.settings import get_settings
from smscode_dev.embedded import free_port
from smscode_dev.gcp import (
    DEAD_LETTER_HOLD,
    MAX_DELIVERY_ATTEMPTS,
    PubSubEmulator,
    delivery_subscription,
)
from tests.cloud_helpers import configure
from tests.conftest import stack_env
from tests.fakes.ronglian import FakeRonglian, Fault
from tests.gcp_helpers import (
    DeliveryFunction,
    b64,
    eventarc_request,
    new_topic,
    pubsub_backend,
    pubsub_down,
    pull_one,
    with_data,
)
from tests.helpers import Server, delivery_message, fresh_phone
from tests.integration.test_faults_broker import slot_untouched

TRANSIENT = (Fault.STATUS, "160050")  # Ronglian: send failed, retry


def pubsub_env(
    redis_url: str, fake: FakeRonglian, emulator: PubSubEmulator, topic: str
) -> dict[str, str]:
    """The deployed HTTP function's settings, publishing to `topic` on the emulator."""
    return stack_env(
        redis_url,
        fake,
        DELIVERY_BACKEND="pubsub",
        PUBSUB_TOPIC=topic,
        PUBSUB_EMULATOR_HOST=emulator.host,
    )


@dataclass
class Lane:
    """A topic, a subscription on it, and `smscode serve` publishing to it."""

    topic: str
    subscription: str
    server: Server

    def send(self, phone: str) -> requests.Response:
        return requests.post(f"{self.server.url}/codes", json={"phone": phone}, timeout=10)


@pytest.fixture(scope="module")
def function(redis_url: str, fake_ronglian_session: FakeRonglian) -> Iterator[DeliveryFunction]:
    """The delivery function with the ronglian provider (through the fake)."""
    deliver = DeliveryFunction(stack_env(redis_url, fake_ronglian_session))
    deliver.start()
    yield deliver
    deliver.stop()


@pytest.fixture(scope="module")
def pulled(
    pubsub_emulator: PubSubEmulator, redis_url: str, fake_ronglian_session: FakeRonglian
) -> Iterator[Lane]:
    """A topic with a pull subscription: the test hands each message to the function."""
    topic, subscription = new_topic(pubsub_emulator)
    server = Server(pubsub_env(redis_url, fake_ronglian_session, pubsub_emulator, topic)).start()
    yield Lane(topic, subscription, server)
    server.stop()


@pytest.fixture(scope="module")
def pushed(
    pubsub_emulator: PubSubEmulator,
    redis_url: str,
    fake_ronglian_session: FakeRonglian,
    function: DeliveryFunction,
) -> Iterator[Lane]:
    """A topic pushed to the function as `smscode dev --gcp` and Eventarc do (dead letters too)."""
    topic = pubsub_emulator.create_topic(f"smscode-{uuid.uuid4().hex[:12]}")
    name = f"{topic.rsplit('/', 1)[1]}-push"
    subscription = delivery_subscription(pubsub_emulator, topic, function.url, name=name)
    server = Server(pubsub_env(redis_url, fake_ronglian_session, pubsub_emulator, topic)).start()
    yield Lane(topic, subscription, server)
    server.stop()


@pytest.fixture
def pubsub_publisher(
    monkeypatch: pytest.MonkeyPatch, pubsub_emulator: PubSubEmulator
) -> tuple[Publisher, Callable[[], list[str]]]:
    """The Publisher under test and a way to read back what reached its queue (wire form)."""
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_emulator.host)
    topic, subscription = new_topic(pubsub_emulator)

    def received() -> list[str]:
        return [base64.b64decode(pull_one(pubsub_emulator, subscription)["data"]).decode()]

    return PubSubPublisher(topic), received


def test_the_publisher_puts_the_wire_form_on_the_topic(
    pubsub_publisher: tuple[Publisher, Callable[[], list[str]]],
) -> None:
    publisher, received = pubsub_publisher
    message = delivery_message()
    started = time.perf_counter()
    publisher.publish(message)
    took = time.perf_counter() - started
    assert [DeliveryMessage.from_json(body) for body in received()] == [message]
    print(f"\n[pubsub publish] first publish, client included: {took * 1000:.0f} ms")


def test_sends_through_the_emulator_reach_ronglian_exactly_once_each(
    pushed: Lane, redis_client: redis.Redis, fake_ronglian: FakeRonglian
) -> None:
    # given five phones asking for a code at once
    phones = [fresh_phone() for _ in range(5)]
    answers: dict[str, requests.Response] = {}
    threads = [
        threading.Thread(target=lambda p=p: answers.update({p: pushed.send(p)})) for p in phones
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {p: a.status_code for p, a in answers.items()} == dict.fromkeys(phones, 202)
    # when the emulator pushes each message to the function
    fake_ronglian.wait_for(5, timeout=30)
    # then each phone got one SMS, every send reads `sent`, and nothing more arrives
    for phone, answer in answers.items():
        status = requests.get(
            f"{pushed.server.url}/codes/{answer.json()['request_id']}", timeout=5
        ).json()
        assert status["state"] == "sent", (phone, status)
    time.sleep(2)  # a window for any redelivery to show itself
    assert sorted(sms.to for sms in fake_ronglian.accepted) == sorted(phones)
    phone = phones[0]
    body = {"phone": phone, "code": fake_ronglian.last_code(phone)}
    verified = requests.post(f"{pushed.server.url}/codes/verify", json=body, timeout=5)
    assert verified.json()["status"] == "success"


def test_redelivered_eventarc_events_change_nothing(
    pulled: Lane,
    function: DeliveryFunction,
    pubsub_emulator: PubSubEmulator,
    redis_client: redis.Redis,
    fake_ronglian: FakeRonglian,
) -> None:
    # given an accepted send, as Eventarc would POST it (binary-mode CloudEvent)
    phone = fresh_phone()
    assert pulled.send(phone).status_code == 202
    event = eventarc_request(pull_one(pubsub_emulator, pulled.subscription), pulled.topic)
    # when Ronglian fails for a passing reason: 503, so Pub/Sub offers it again
    fake_ronglian.set_policy(lambda _: TRANSIENT)
    failed = function.post(event)
    assert failed.status_code == 503
    assert "Traceback" not in failed.text
    # then the redelivery sends it, and later redeliveries send nothing more
    fake_ronglian.set_policy(None)
    assert [function.post(event).status_code for _ in range(3)] == [200, 200, 200]
    assert len(fake_ronglian.sms_to(phone)) == 1
    assert "Traceback" not in function.output()


def test_a_message_that_can_never_succeed_is_acknowledged_and_logged(
    pulled: Lane,
    function: DeliveryFunction,
    pubsub_emulator: PubSubEmulator,
    redis_client: redis.Redis,
    fake_ronglian: FakeRonglian,
) -> None:
    # given an accepted send that Ronglian refuses for good (160042: bad number format)
    phone = fresh_phone()
    answer = pulled.send(phone)
    event = eventarc_request(pull_one(pubsub_emulator, pulled.subscription), pulled.topic)
    fake_ronglian.set_policy(lambda _: (Fault.STATUS, "160042"))
    # when it and two malformed messages are delivered
    refused = function.post(event)
    not_ours = function.post(with_data(event, b64('{"version": 9}')))
    not_base64 = function.post(with_data(event, "%%% not base64"))
    # then each is acknowledged (2xx: no redelivery) and says why in the log
    assert [refused.status_code, not_ours.status_code, not_base64.status_code] == [200, 200, 200]
    state = requests.get(
        f"{pulled.server.url}/codes/{answer.json()['request_id']}", timeout=5
    ).json()["state"]
    assert state == "failed"
    function.wait_for_output("provider refused for good")
    function.wait_for_output("malformed delivery message")
    function.wait_for_output("malformed Pub/Sub push")


def test_pubsub_retries_a_failing_push_until_it_is_delivered(
    pushed: Lane, redis_client: redis.Redis, fake_ronglian: FakeRonglian
) -> None:
    # given Ronglian failing the first two attempts for one phone
    phone = fresh_phone()
    attempts: list[str] = []

    def first_two_fail(body: dict[str, object]) -> tuple[Fault, str] | None:
        if body.get("to") != phone:
            return None
        attempts.append(phone)
        return TRANSIENT if len(attempts) <= 2 else None

    fake_ronglian.set_policy(first_two_fail)
    # when a code is asked for
    assert pushed.send(phone).status_code == 202
    # then the emulator pushes again after each 503, and the third attempt sends it once
    [sms] = fake_ronglian.wait_for(1, timeout=30)
    assert sms.to == phone
    assert len(attempts) == 3


@pytest.mark.slow
def test_a_message_failing_every_time_ends_on_the_dead_letter_topic(
    pushed: Lane,
    pubsub_emulator: PubSubEmulator,
    redis_client: redis.Redis,
    fake_ronglian: FakeRonglian,
) -> None:
    # given Ronglian failing for one phone, for good
    phone = fresh_phone()
    fake_ronglian.set_policy(lambda body: TRANSIENT if body.get("to") == phone else None)
    # when a code is asked for
    request_id = pushed.send(phone).json()["request_id"]
    # then after MAX_DELIVERY_ATTEMPTS pushes the message moves to the dead-letter topic
    hold = f"{pushed.subscription}{DEAD_LETTER_HOLD}"
    dead = pull_one(pubsub_emulator, hold, timeout=90)
    assert json.loads(base64.b64decode(dead["data"]))["request_id"] == request_id
    count = dead["attributes"]["CloudPubSubDeadLetterSourceDeliveryCount"]
    assert int(count) == MAX_DELIVERY_ATTEMPTS
    tries = [r for r in fake_ronglian.requests if phone[-8:] in r.body.decode(errors="replace")]
    assert len(tries) == MAX_DELIVERY_ATTEMPTS
    assert fake_ronglian.sms_to(phone) == []


@pytest.mark.slow
def test_a_publish_that_fails_is_a_503_and_leaves_nothing_issued(
    pubsub_emulator: PubSubEmulator,
    pulled: Lane,
    redis_url: str,
    redis_client: redis.Redis,
    fake_ronglian: FakeRonglian,
) -> None:
    phone, took = fresh_phone(), {}
    no_topic = pubsub_emulator.path("topics", f"missing-{uuid.uuid4().hex[:8]}")
    down = f"127.0.0.1:{free_port()}"
    for case, env in {
        "topic missing": pubsub_env(redis_url, fake_ronglian, pubsub_emulator, no_topic),
        "emulator down": {**pulled.server.env, "PUBSUB_EMULATOR_HOST": down},
    }.items():
        # given a topic that does not exist, then a Pub/Sub nothing answers for
        server = Server(env).start()
        try:
            # when
            answer = requests.post(f"{server.url}/codes", json={"phone": phone}, timeout=10)
        finally:
            server.stop()
        # then 503, and the phone keeps its resend slot and daily count
        assert answer.status_code == 503, case
        assert answer.json()["error"] == "unavailable"
        assert slot_untouched(redis_client, phone), case
        took[case] = round(answer.elapsed.total_seconds(), 2)
    # and the same phone is accepted at once where publishing works
    assert pulled.send(phone).status_code == 202
    pull_one(pubsub_emulator, pulled.subscription)
    print(f"\n[pubsub publish fails] 503 after {took} s")


def test_an_accepted_send_survives_the_server_dying_right_after_202(
    pubsub_emulator: PubSubEmulator,
    function: DeliveryFunction,
    redis_url: str,
    redis_client: redis.Redis,
    fake_ronglian: FakeRonglian,
) -> None:
    # given a server that is killed (SIGKILL) the moment it has answered 202
    topic, subscription = new_topic(pubsub_emulator)
    server = Server(pubsub_env(redis_url, fake_ronglian, pubsub_emulator, topic)).start()
    phone = fresh_phone()
    try:
        answer = requests.post(f"{server.url}/codes", json={"phone": phone}, timeout=10)
    finally:
        server.kill()
    assert answer.status_code == 202
    # when the function gets what the topic holds
    message = pull_one(pubsub_emulator, subscription)
    assert function.post(eventarc_request(message, topic)).status_code == 200
    # then the send was on the topic before the answer left: one SMS
    [sms] = fake_ronglian.wait_for(1)
    assert sms.to == phone
    assert (
        json.loads(base64.b64decode(message["data"]))["request_id"] == (answer.json()["request_id"])
    )


def test_a_published_message_is_delivered_exactly_once(
    request: pytest.FixtureRequest, redis_client: redis.Redis, fake_ronglian: FakeRonglian
) -> None:
    # given this process publishing as the HTTP function does, the emulator pushing
    try:
        with pubsub_backend(request):
            sender, phone = bootstrap.sender(), fresh_phone()
            # when a code is issued through the configured publisher
            issued = sender.issue(phone, "127.0.0.1")
            # then the function delivers it and records it sent, once
            [sms] = fake_ronglian.wait_for(1, timeout=30)
            deadline = time.monotonic() + 10
            while sender.status(issued.request_id)["state"] != "sent":
                assert time.monotonic() < deadline, sender.status(issued.request_id)
                time.sleep(0.05)
            time.sleep(1)
    finally:
        bootstrap.reset()
    assert sms.to == phone
    assert len(fake_ronglian.sms_to(phone)) == 1


def test_a_publisher_that_cannot_reach_pubsub_raises_publish_error(
    monkeypatch: pytest.MonkeyPatch, redis_url: str, fake_ronglian: FakeRonglian
) -> None:
    # given the backend aimed at a port nobody listens on, built as the service builds it
    configure(monkeypatch, stack_env(redis_url, fake_ronglian, **pubsub_down(free_port())))
    settings = get_settings()
    publisher = bootstrap.PUBLISHERS[settings.delivery_backend](settings)
    # when / then
    began = time.monotonic()
    try:
        with pytest.raises(PublishError):
            publisher.publish(delivery_message())
    finally:
        bootstrap.reset()
    print(f"\n[pubsub down] PublishError after {time.monotonic() - began:.2f} s")
