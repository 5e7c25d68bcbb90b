"""serverless.yml: its handlers import and are callable; routes, queue and secrets as required."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from smscode.entrypoints.http import routes as api_routes
from smscode_dev import cloud as cloud_dev

ROOT = Path(__file__).parents[2]
SERVERLESS = ROOT / "serverless.yml"
# Not a route of its own: one Lambda instance's Prometheus counters say little (metrics leave
# Lambda as EMF log lines); the catch-all route still reaches it, as on functions-framework.
NOT_ON_API_GATEWAY = {"GET /metrics"}


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(SERVERLESS.read_text())
    return loaded


def _resources(config: dict[str, Any]) -> dict[str, Any]:
    resources: dict[str, Any] = config["resources"]["Resources"]
    return resources


def test_it_is_serverless_v3_on_aws_python_311(config: dict[str, Any]) -> None:
    assert str(config["frameworkVersion"]) == "3"
    assert config["provider"]["name"] == "aws"
    assert config["provider"]["runtime"] == "python3.11"


def test_every_handler_imports_and_is_callable(config: dict[str, Any]) -> None:
    # In a fresh interpreter, as a Lambda cold start imports it (module-level side effects
    # such as functions-framework's app set-up must not depend on what ran before).
    check = (
        "import importlib.util, sys\n"
        "for name, source, attribute in zip(*[iter(sys.argv[1:])] * 3):\n"
        "    spec = importlib.util.spec_from_file_location(name, source)\n"
        "    module = importlib.util.module_from_spec(spec)\n"
        "    spec.loader.exec_module(module)\n"
        "    print(name, callable(getattr(module, attribute)))\n"
    )
    argv = []
    for name, function in config["functions"].items():
        module_path, _, attribute = function["handler"].rpartition(".")
        source = ROOT / f"{module_path}.py"
        assert source.is_file(), f"{name}: no {source}"
        argv += [name, str(source), attribute]
    run = subprocess.run(
        [sys.executable, "-c", check, *argv], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == [word for name in config["functions"] for word in (name, "True")]


def test_every_route_of_the_api_is_an_http_api_event(config: dict[str, Any]) -> None:
    routes = set()
    for pattern, methods in api_routes():
        if pattern.pattern.startswith("/v2"):
            continue  # Twilio Verify's routes reach the route table through "*"
        path = re.sub(r"\(\?P<(\w+)>[^)]*\)+", r"{\1}", pattern.pattern)
        path = re.sub(r"\\(.)", r"\1", path)  # an escaped dot is a dot
        routes |= {f"{method} {path}" for method in methods}
    events = {
        event["httpApi"] if isinstance(event["httpApi"], str) else
        f"{event['httpApi']['method']} {event['httpApi']['path']}"
        for event in config["functions"]["issueCode"]["events"]
    }  # fmt: skip
    assert events - {"*"} == routes - NOT_ON_API_GATEWAY
    assert "*" in events  # the rest: the route table's own 404 and 405
    assert "GET /codes/{request_id}" in events


def test_delivery_reads_the_queue_in_batches_of_ten_with_partial_failures(
    config: dict[str, Any],
) -> None:
    [event] = config["functions"]["deliverSms"]["events"]
    sqs = event["sqs"]
    assert sqs["arn"] == {"Fn::GetAtt": ["DeliveryQueue", "Arn"]}
    assert sqs["batchSize"] == 10 == cloud_dev.BATCH_SIZE
    assert sqs["functionResponseType"] == "ReportBatchItemFailures"


def test_the_queue_has_a_dlq_and_a_visibility_timeout_six_times_the_function_timeout(
    config: dict[str, Any],
) -> None:
    resources = _resources(config)
    queue = resources["DeliveryQueue"]["Properties"]
    redrive = queue["RedrivePolicy"]
    assert redrive["maxReceiveCount"] == 5 == cloud_dev.MAX_RECEIVE_COUNT
    dlq = redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]
    assert resources[dlq]["Type"] == "AWS::SQS::Queue"
    assert queue["VisibilityTimeout"] >= 6 * config["functions"]["deliverSms"]["timeout"]
    # the HTTP function publishes to that queue
    environment = config["functions"]["issueCode"]["environment"]
    assert environment["DELIVERY_BACKEND"] == "sqs"
    assert environment["SQS_QUEUE_URL"] == {"Ref": "DeliveryQueue"}


def test_secrets_are_ssm_parameter_names_read_at_run_time(config: dict[str, Any]) -> None:
    environment = config["provider"]["environment"]
    for secret in ("REDIS_URL", "CODE_SECRET", "RONGLIAN_ACC_ID", "RONGLIAN_ACC_TOKEN"):
        assert secret not in environment
        assert environment[f"{secret}_SSM_PARAMETER"].startswith("/smscode/${sls:stage}/")
    assert "${ssm:" not in json.dumps(config)  # never resolved into the template
    [ssm] = [s for s in config["provider"]["iam"]["role"]["statements"] if "ssm" in s["Action"]]
    assert ssm["Resource"]["Fn::Sub"].endswith(":parameter/smscode/${sls:stage}/*")


def test_packaging_ships_functions_shared_and_dependencies_only(config: dict[str, Any]) -> None:
    patterns = config["package"]["patterns"]
    assert patterns[0] == "!**"
    assert {"functions/**", "shared/smscode/**", "build/lambda/**"} <= set(patterns)
    assert not any(p.startswith(("tests", "bench", ".venv")) for p in patterns)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("npx") is None, reason="npx (Node.js) is not installed")
def test_serverless_v3_packages_it_without_aws_credentials(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {"SLS_TELEMETRY_DISABLED": "1", "SLS_NOTIFICATIONS_MODE": "off", "CI": "1"}
    run = subprocess.run(
        ["npx", "--yes", "serverless@3", "package", "--package", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if run.returncode != 0 and re.search(r"ENOTFOUND|EAI_AGAIN|ECONNREFUSED", run.stderr):
        pytest.skip("the npm registry is not reachable")
    assert run.returncode == 0, run.stdout + run.stderr
    names = zipfile.ZipFile(tmp_path / "smscode.zip").namelist()
    assert {"functions/issue_code/main.py", "functions/deliver_sms/main.py"} <= set(names)
    assert "shared/smscode/adapters/lua/issue.lua" in names
    assert not [n for n in names if not n.startswith(("functions/", "shared/", "build/lambda/"))]
    template = json.loads((tmp_path / "cloudformation-template-update-stack.json").read_text())
    kinds = [resource["Type"] for resource in template["Resources"].values()]
    assert kinds.count("AWS::SQS::Queue") == 2
    assert "AWS::ApiGatewayV2::Api" in kinds
    [mapping] = [r for r in template["Resources"].values() if r["Type"].endswith("SourceMapping")]
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
