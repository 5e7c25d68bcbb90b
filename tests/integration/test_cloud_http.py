"""API Gateway v2 events through the Lambda adapter answer as functions-framework does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from smscode import bootstrap
from smscode.entrypoints.apigw import handle_event
from smscode_dev.cloud import LocalCloud, lambda_handler
from tests.cloud_helpers import EVENTS, api_event, configure, event_body, load_event, new_cloud
from tests.conftest import stack_env
from tests.fakes.ronglian import FakeRonglian
from tests.helpers import Server, fresh_phone, started

Answer = tuple[int, dict[str, str], Any]
ISSUE_SOURCE = Path(__file__).parents[2] / "functions" / "issue_code" / "handler.py"


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    local = new_cloud()
    yield local
    local.stop()


@pytest.fixture(scope="module")
def server(
    cloud: LocalCloud, redis_url: str, fake_ronglian_session: FakeRonglian
) -> Iterator[Server]:
    """`smscode serve` publishing to the moto queue, as the HTTP function would on AWS."""
    with started(process := Server(stack_env(redis_url, fake_ronglian_session, **cloud.env))):
        yield process


@pytest.fixture
def lambda_env(
    monkeypatch: pytest.MonkeyPatch,
    cloud: LocalCloud,
    redis_url: str,
    redis_client: redis.Redis,
    fake_ronglian: FakeRonglian,
) -> Iterator[dict[str, str]]:
    """This process set up as the Lambda HTTP function, on the same queue as `server`."""
    env = stack_env(redis_url, fake_ronglian, **cloud.env)
    configure(monkeypatch, env)
    yield env
    bootstrap.reset()


def _decode(status: int, headers: dict[str, str], body: bytes) -> Answer:
    kind = headers.get("Content-Type", "")
    value: Any = json.loads(body) if kind.startswith("application/json") else body
    if isinstance(value, dict) and "request_id" in value:
        assert len(value["request_id"]) == 32
        value["request_id"] = "<request id>"
    return status, headers, value


def via_lambda(event: dict[str, Any]) -> Answer:
    result = handle_event(event)
    body = result["body"].encode()
    assert not result["isBase64Encoded"]
    return _decode(result["statusCode"], result["headers"], body)


def via_server(server: Server, event: dict[str, Any]) -> Answer:
    headers = {
        k: v for k, v in event["headers"].items() if k in {"content-type", "accept-language"}
    }
    answer = requests.request(
        event["requestContext"]["http"]["method"],
        server.url + event["rawPath"],
        headers=headers,
        data=event_body(event),
        timeout=5,
    )
    return _decode(answer.status_code, dict(answer.headers), answer.content)


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("apigw_get_page.json", 200),
        ("apigw_post_codes_form.json", 202),
        ("apigw_post_codes_json.json", 202),
        ("apigw_post_codes_base64.json", 202),
        ("apigw_post_codes_oversized.json", 413),
        ("apigw_post_codes_bad_json.json", 400),
        ("apigw_post_verify_json.json", 400),
        ("apigw_get_status.json", 404),
    ],
)
def test_sample_events_get_the_same_answer_as_functions_framework(
    lambda_env: dict[str, str], server: Server, name: str, status: int
) -> None:
    # given the same request, with its own phone on each path (a phone may be sent to once)
    on_lambda = load_event(name, fresh_phone())
    on_server = load_event(name, fresh_phone())
    # when
    lambda_status, lambda_headers, lambda_body = via_lambda(on_lambda)
    server_status, server_headers, server_body = via_server(server, on_server)
    # then
    assert lambda_status == server_status == status
    assert lambda_body == server_body
    for header in ("Content-Type", "Content-Security-Policy", "Retry-After"):
        assert lambda_headers.get(header) == server_headers.get(header)


def test_rate_limited_answers_carry_retry_after_on_both_paths(
    lambda_env: dict[str, str], server: Server
) -> None:
    phone_a, phone_b = fresh_phone(), fresh_phone()
    event_a = load_event("apigw_post_codes_json.json", phone_a)
    event_b = load_event("apigw_post_codes_json.json", phone_b)
    assert via_lambda(event_a)[0] == via_server(server, event_b)[0] == 202
    status_a, headers_a, body_a = via_lambda(event_a)
    status_b, headers_b, body_b = via_server(server, event_b)
    assert status_a == status_b == 429
    assert body_a["error"] == body_b["error"] == "rate_limited"
    assert headers_a["Retry-After"] == str(body_a["retry_after"])
    assert headers_b["Retry-After"] == str(body_b["retry_after"])


def test_client_ip_is_the_source_ip_of_the_request_context(
    monkeypatch: pytest.MonkeyPatch, lambda_env: dict[str, str]
) -> None:
    configure(monkeypatch, {"IP_HOURLY_LIMIT": "1"})
    first = load_event("apigw_post_codes_json.json", fresh_phone())
    second = load_event("apigw_post_codes_json.json", fresh_phone())
    assert via_lambda(first)[0] == 202
    # a forged X-Forwarded-For does not make a second client
    second["headers"]["x-forwarded-for"] = "203.0.113.99"
    status, _, body = via_lambda(second)
    assert (status, body["error"]) == (429, "rate_limited")
    # another source IP is another client
    second["requestContext"]["http"]["sourceIp"] = "203.0.113.5"
    assert via_lambda(second)[0] == 202


def test_functions_framework_with_sqs_backend_to_lambda_handler_sends_one_sms(
    lambda_env: dict[str, str], server: Server, cloud: LocalCloud, fake_ronglian: FakeRonglian
) -> None:
    # given a code asked for from the page, through functions-framework (`smscode serve`)
    cloud.sqs.purge_queue(QueueUrl=cloud.queue_url)  # the other tests' sends
    phone = fresh_phone()
    answer = requests.post(f"{server.url}/codes", data={"mobile": phone}, timeout=5)
    assert answer.status_code == 202
    # when the SQS queue is fed to the Lambda delivery handler
    assert cloud.poll_once(lambda_handler(), wait_seconds=1) == 1
    # then exactly one SMS, whose code verifies through the Lambda adapter
    [sms] = fake_ronglian.wait_for(1)
    assert sms.to == phone
    verify = api_event("POST", "/codes/verify", {"phone": phone, "code": sms.datas[0]})
    assert via_lambda(verify)[2] == {"status": "success"}
    assert fake_ronglian.sms_to(phone) == [sms]


def test_secrets_come_from_ssm_parameters_at_cold_start(
    monkeypatch: pytest.MonkeyPatch, lambda_env: dict[str, str], cloud: LocalCloud
) -> None:
    # given the secrets only in SSM, as serverless.yml deploys the function
    import boto3

    ssm = boto3.session.Session().client("ssm")
    prefix = f"/smscode/{cloud.queue_name}"
    ssm.put_parameter(Name=f"{prefix}/redis-url", Value=lambda_env["REDIS_URL"], Type="String")
    ssm.put_parameter(
        Name=f"{prefix}/code-secret", Value=lambda_env["CODE_SECRET"], Type="SecureString"
    )
    monkeypatch.delenv("REDIS_URL")
    monkeypatch.delenv("CODE_SECRET")
    configure(
        monkeypatch,
        {
            "REDIS_URL_SSM_PARAMETER": f"{prefix}/redis-url",
            "CODE_SECRET_SSM_PARAMETER": f"{prefix}/code-secret",
        },
    )
    # then the function reads them and works
    status, _, body = via_lambda(api_event("GET", "/healthz"))
    assert (status, body["status"]) == (200, "ok")
    # and a missing parameter is a clean 503, not a crash
    monkeypatch.delenv("REDIS_URL")
    configure(monkeypatch, {"REDIS_URL_SSM_PARAMETER": f"{prefix}/nowhere"})
    status, _, body = via_lambda(api_event("GET", "/healthz"))
    assert (status, body["error"]) == (503, "unavailable")


def test_the_page_on_lambda_needs_neither_boto3_nor_redis_nor_flask_nor_celery(
    lambda_env: dict[str, str], tmp_path: Path
) -> None:
    # a fresh interpreter, as a cold start: import the handler, answer GET /
    script = (
        "import importlib.util, json, sys\n"
        f"spec = importlib.util.spec_from_file_location('main', {str(ISSUE_SOURCE)!r})\n"
        "main = importlib.util.module_from_spec(spec); spec.loader.exec_module(main)\n"
        f"event = json.load(open({str(EVENTS / 'apigw_get_page.json')!r}))\n"
        "answer = main.lambda_handler(event, None)\n"
        "print(answer['statusCode'], *(m in sys.modules for m in ('boto3', 'celery', 'flask')))\n"
    )
    env = {**os.environ, **lambda_env, "REDIS_URL": "redis://127.0.0.1:1/0"}
    run = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert run.stdout.split() == ["200", "False", "False", "False"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/nowhere", 404), ("GET", "/codes/verify", 405), ("DELETE", "/codes", 405)],
)
def test_unknown_routes_reach_the_route_table_on_both_paths(
    lambda_env: dict[str, str], server: Server, method: str, path: str, status: int
) -> None:
    # serverless.yml's catch-all route hands these to the Lambda function too
    event = api_event(method, path)
    lambda_answer, server_answer = via_lambda(event), via_server(server, event)
    assert lambda_answer[0] == server_answer[0] == status
    assert lambda_answer[2] == server_answer[2]
    assert lambda_answer[2]["status"] == "error"
