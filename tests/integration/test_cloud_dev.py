"""The local cloud shape: the poller behaves as Lambda's, and `smscode dev --cloud` end to end."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import requests

from smscode.entrypoints.apigw import handle_event
from smscode_dev.cloud import LocalCloud, failed_ids
from smscode_dev.embedded import free_port
from tests.cloud_helpers import load_event
from tests.fakes.ronglian import FakeRonglian, Fault
from tests.helpers import DevCommand, fresh_phone

if TYPE_CHECKING:
    from mypy_boto3_sqs.literals import QueueAttributeNameType

# The conftest `cloud`: failed records come back after a second, and a one-second long poll.
CLOUD_OPTIONS = {"visibility_timeout": 1, "wait_seconds": 1}


def queue_depth(cloud: LocalCloud, url: str) -> int:
    names: list[QueueAttributeNameType] = [
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
    ]  # fmt: skip
    attributes = cloud.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes[name]) for name in names)


@pytest.mark.slow
def test_a_record_that_keeps_failing_reaches_the_dlq_after_max_receive_count(
    cloud: LocalCloud, fake_ronglian: FakeRonglian
) -> None:
    # given Ronglian failing transiently, for good
    fake_ronglian.set_policy(lambda _: (Fault.STATUS, "160050"))
    phone = fresh_phone()
    answer = handle_event(load_event("apigw_post_codes_json.json", phone))
    request_id = json.loads(answer["body"])["request_id"]
    # when the poller runs as Lambda's would
    cloud.start_poller()
    deadline = time.monotonic() + 40
    while queue_depth(cloud, cloud.dlq_url) == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    # then the message rests in the DLQ after exactly maxReceiveCount attempts
    assert queue_depth(cloud, cloud.dlq_url) == 1
    assert queue_depth(cloud, cloud.queue_url) == 0
    attempts = [r for r in fake_ronglian.requests if phone in r.body.decode(errors="replace")]
    assert len(attempts) == cloud.max_receive_count == 5
    [dead] = cloud.sqs.receive_message(QueueUrl=cloud.dlq_url)["Messages"]
    assert json.loads(dead["Body"])["request_id"] == request_id


def test_handler_results_are_read_as_lambda_reads_them() -> None:
    ids = ["a", "b"]
    assert failed_ids(None, ids) == set()
    assert failed_ids({}, ids) == set()
    assert failed_ids({"batchItemFailures": []}, ids) == set()
    assert failed_ids({"batchItemFailures": [{"itemIdentifier": "b"}]}, ids) == {"b"}
    # anything Lambda cannot read fails the whole batch
    assert failed_ids({"batchItemFailures": [{"itemIdentifier": ""}]}, ids) == {"a", "b"}
    assert failed_ids({"batchItemFailures": [{"itemIdentifier": "zz"}]}, ids) == {"a", "b"}
    assert failed_ids({"batchItemFailures": [{"id": "a"}]}, ids) == {"a", "b"}
    assert failed_ids("nonsense", ids) == {"a", "b"}


def test_dev_cloud_runs_the_cloud_shape_and_ctrl_c_stops_it(tmp_path: Path) -> None:
    # given `smscode dev --cloud` as a newcomer runs it: no REDIS_URL, console provider
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "CODE_SECRET"}}
    env.update({"PORT": str(port), "SMS_PROVIDER": "console"})
    dev = DevCommand(tmp_path / "dev.log", "--cloud", env=env)
    try:
        dev.read_until(r"SQS \(moto\) at http://127\.0\.0\.1:\d+")
        dev.read_until(rf"open http://127\.0\.0\.1:{port}/")
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        # when a code is asked for from the page, then the Lambda handler, fed by the
        # poller, prints the SMS, and the code verifies
        _, verified = dev.sign_up(port)
        # dev signs with a key of its own run, so the answer carries a verification token
        assert verified.keys() == {"status", "token"}
    finally:
        dev.interrupt()
    assert dev.group_gone(), "smscode dev --cloud left processes running"
    assert "Traceback" not in dev.output()
