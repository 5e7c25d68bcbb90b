"""SQS batches and Pub/Sub CloudEvents through the real handlers, moto SQS and the fake Ronglian."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from smscode import bootstrap
from smscode.adapters.publishers.sqs import SqsPublisher
from smscode.domain.messages import DeliveryMessage
from smscode.domain.outcomes import Outcome
from smscode.entrypoints.apigw import handle_event
from smscode.entrypoints.sqs import handle_sqs_batch
from smscode.service_layer.ports import PublishError
from smscode_dev.cloud import LocalCloud, lambda_handler, to_record
from tests.cloud_helpers import (
    configure,
    load_event,
    pubsub_cloud_event,
    receive_all,
)
from tests.conftest import function_client
from tests.fakes.ronglian import FakeRonglian, Fault
from tests.helpers import delivery_message, fresh_phone

DELIVER_SOURCE = "functions/deliver_sms/main.py"


def issue(phone: str) -> str:
    """POST /codes through the Lambda HTTP adapter; the request id."""
    answer = handle_event(load_event("apigw_post_codes_json.json", phone))
    assert answer["statusCode"] == 202, answer
    request_id: str = json.loads(answer["body"])["request_id"]
    return request_id


def batch_event(cloud: LocalCloud, messages: list[Any]) -> dict[str, Any]:
    return {"Records": [to_record(message, cloud.queue_arn) for message in messages]}


def failures(result: dict[str, Any]) -> set[str]:
    return {item["itemIdentifier"] for item in result["batchItemFailures"]}


def test_lambda_http_to_sqs_to_lambda_handler_sends_one_sms(
    cloud: LocalCloud, fake_ronglian: FakeRonglian
) -> None:
    # given a code asked for through API Gateway
    phone = fresh_phone()
    issue(phone)
    # when Lambda's poller hands the queue to the delivery function
    assert cloud.poll_once(lambda_handler(), wait_seconds=1) == 1
    # then one SMS, the queue is empty, and the code verifies
    [sms] = fake_ronglian.wait_for(1)
    assert sms.to == phone
    assert cloud.poll_once(lambda_handler(), wait_seconds=0) == 0
    verify = load_event("apigw_post_verify_json.json", phone)
    verify["body"] = verify["body"].replace("000000", sms.datas[0])
    assert json.loads(handle_event(verify)["body"]) == {"status": "success"}


def test_one_transient_failure_and_one_malformed_record_are_the_only_failures(
    cloud: LocalCloud, fake_ronglian: FakeRonglian
) -> None:
    # given three codes, Ronglian failing transiently (160050) for one phone
    good, bad = [fresh_phone(), fresh_phone()], fresh_phone()
    for phone in [*good, bad]:
        issue(phone)
    fake_ronglian.set_policy(
        lambda body: (Fault.STATUS, "160050") if body.get("to") == bad else None
    )
    messages = receive_all(cloud, 3)
    event = batch_event(cloud, messages)
    malformed = {**event["Records"][0], "messageId": "malformed-1", "body": '{"version": 1,'}
    event["Records"].insert(1, malformed)
    bad_id = next(m["MessageId"] for m in messages if bad[-8:] in m["Body"])
    # when the batch is handled
    result = handle_sqs_batch(event)
    # then only the failing and the malformed records go back to the queue
    assert failures(result) == {bad_id, "malformed-1"}
    assert sorted(sms.to for sms in fake_ronglian.accepted) == sorted(good)
    # and the retried record is delivered once Ronglian recovers, the others not again
    fake_ronglian.set_policy(None)
    retry = {"Records": [r for r in event["Records"] if r["messageId"] == bad_id]}
    assert handle_sqs_batch(retry) == {"batchItemFailures": []}
    assert sorted(sms.to for sms in fake_ronglian.accepted) == sorted([*good, bad])


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        '{"version": 2, "message_id": "x"}',
        "{}",
        json.dumps(["a", "list"]),
    ],
    ids=["bad-json", "unknown-version", "missing-fields", "not-an-object"],
)
def test_malformed_records_are_reported_not_raised(cloud: LocalCloud, body: str) -> None:
    event = load_event("sqs_event.json")
    event["Records"][0]["body"] = body
    assert failures(handle_sqs_batch(event)) == {event["Records"][0]["messageId"]}


def test_the_same_sqs_message_delivered_twice_sends_one_sms(
    cloud: LocalCloud, fake_ronglian: FakeRonglian
) -> None:
    phone = fresh_phone()
    issue(phone)
    event = batch_event(cloud, receive_all(cloud, 1))
    # at-least-once: the same record in two invocations, then twice in one batch
    assert handle_sqs_batch(event) == {"batchItemFailures": []}
    assert handle_sqs_batch(event) == {"batchItemFailures": []}
    twice = {"Records": event["Records"] * 2}
    assert handle_sqs_batch(twice)["batchItemFailures"] == []
    assert len(fake_ronglian.sms_to(phone)) == 1


def test_a_batch_of_ten_is_delivered_concurrently(
    monkeypatch: pytest.MonkeyPatch, cloud: LocalCloud, fake_ronglian: FakeRonglian
) -> None:
    # given ten codes and a Ronglian that takes a while to answer (long enough for ten
    # threads to start even on a loaded machine, well inside the read timeout)
    phones = [fresh_phone() for _ in range(10)]
    for phone in phones:
        issue(phone)
    event = batch_event(cloud, receive_all(cloud, 10))
    configure(monkeypatch, {"RONGLIAN_READ_TIMEOUT_SECONDS": "10"})
    fake_ronglian.latency = 2.0
    deliver = bootstrap.deliverer().deliver
    lock, in_flight, most = threading.Lock(), [0], [0]

    def counted(message: DeliveryMessage) -> Outcome:
        # the real delivery core, counting how many calls overlap
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        try:
            return deliver(message)
        finally:
            with lock:
                in_flight[0] -= 1

    # when
    result = handle_sqs_batch(event, counted)
    # then all ten were in flight together, and none failed
    assert result == {"batchItemFailures": []}
    assert most[0] == 10
    assert sorted(sms.to for sms in fake_ronglian.accepted) == sorted(phones)


def test_pubsub_cloud_event_is_delivered_once_and_retried_on_failure(
    cloud: LocalCloud, fake_ronglian: FakeRonglian
) -> None:
    client = function_client(DELIVER_SOURCE, "deliver", "cloudevent")
    phone = fresh_phone()
    issue(phone)
    [message] = receive_all(cloud, 1)
    event = pubsub_cloud_event(message["Body"])
    headers = {"Content-Type": "application/cloudevents+json"}
    # a transient failure answers an error, so Pub/Sub redelivers
    fake_ronglian.set_policy(lambda _: (Fault.STATUS, "160050"))
    answer = client.post("/", data=json.dumps(event), headers=headers)
    assert answer.status_code == 503
    assert "Traceback" not in answer.get_data(as_text=True)
    # the redelivery succeeds; a duplicate push sends nothing more
    fake_ronglian.set_policy(None)
    assert client.post("/", data=json.dumps(event), headers=headers).status_code == 200
    assert client.post("/", data=json.dumps(event), headers=headers).status_code == 200
    # the raw push body (not a CloudEvent) is converted by functions-framework: same answer
    push = load_event("pubsub_push.json")
    push["message"]["data"] = event["data"]["message"]["data"]
    assert client.post("/", json=push).status_code == 200
    assert len(fake_ronglian.sms_to(phone)) == 1


def test_malformed_pubsub_message_is_acknowledged(cloud: LocalCloud) -> None:
    client = function_client(DELIVER_SOURCE, "deliver", "cloudevent")
    event = load_event("pubsub_cloud_event.json")  # its data decodes to {"version": 1}
    headers = {"Content-Type": "application/cloudevents+json"}
    assert client.post("/", data=json.dumps(event), headers=headers).status_code == 200
    event["data"]["message"]["data"] = "%%% not base64"
    assert client.post("/", data=json.dumps(event), headers=headers).status_code == 200


def test_a_fifo_queue_drops_a_republished_message(cloud: LocalCloud) -> None:
    # given a FIFO queue (no content-based deduplication: the publisher names the id)
    url = cloud.sqs.create_queue(
        QueueName=f"{cloud.queue_name}.fifo", Attributes={"FifoQueue": "true"}
    )["QueueUrl"]
    publisher, message = SqsPublisher(url), delivery_message()
    # when the same message is published twice (a client retry)
    publisher.publish(message)
    publisher.publish(message)
    # then it is queued once, in its own group
    [queued] = cloud.sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
    )["Messages"]
    assert DeliveryMessage.from_json(queued["Body"]) == message
    assert queued["Attributes"]["MessageGroupId"] == message.message_id


def test_an_unreachable_queue_is_a_publish_error_and_a_503(
    monkeypatch: pytest.MonkeyPatch, cloud: LocalCloud
) -> None:
    missing = f"{cloud.endpoint}/123456789012/no-such-queue"
    with pytest.raises(PublishError):
        SqsPublisher(missing).publish(delivery_message())
    configure(monkeypatch, {"SQS_QUEUE_URL": missing})
    answer = handle_event(load_event("apigw_post_codes_json.json", fresh_phone()))
    assert answer["statusCode"] == 503
    assert json.loads(answer["body"])["error"] == "unavailable"


def test_a_misconfigured_function_returns_the_whole_batch_without_raising(
    monkeypatch: pytest.MonkeyPatch, cloud: LocalCloud
) -> None:
    monkeypatch.delenv("CODE_SECRET")
    bootstrap.reset()
    event = load_event("sqs_event.json")
    assert failures(handle_sqs_batch(event)) == {event["Records"][0]["messageId"]}
