"""Metrics: Prometheus text from the HTTP function and the worker, and EMF lines for Lambda."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from smscode.adapters import metrics
from smscode_dev.embedded import free_port
from tests.conftest import ADMIN_KEY, stack_env
from tests.fakes.ronglian import FakeRonglian
from tests.helpers import Server, Worker, fresh_phone, redis_db, started


@pytest.fixture(scope="module")
def own_stack(
    redis_url: str, fake_ronglian_session: FakeRonglian
) -> Iterator[tuple[Server, Worker, str]]:
    """A server (two gunicorn workers) and a worker with its exporter, counting only this flow."""
    port = free_port()
    # A broker database of its own: the session's worker must not take this flow's task.
    broker = redis_db(redis_url, 15)
    env = stack_env(
        redis_url, fake_ronglian_session, METRICS_PORT=str(port), CELERY_BROKER_URL=broker
    )
    server, worker = Server(env), Worker(env)
    with started(server, worker):
        yield server, worker, f"http://127.0.0.1:{port}/metrics"


def scrape(
    url: str, auth: tuple[str, str] | None = None
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text page, by name and labels."""
    answer = requests.get(url, timeout=5, auth=auth)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def test_http_function_and_worker_export_what_one_flow_did(
    own_stack: tuple[Server, Worker, str], fake_ronglian: FakeRonglian
) -> None:
    # given
    server, _, worker_metrics = own_stack
    phone = fresh_phone()
    # when: one send, one refused resend, one wrong and one right code
    assert requests.post(f"{server.url}/codes", json={"phone": phone}, timeout=5).ok
    assert requests.post(f"{server.url}/codes", json={"phone": phone}, timeout=5).status_code == 429
    [sms] = fake_ronglian.wait_for(1)
    wrong = "0" * 6 if sms.datas[0] != "0" * 6 else "1" * 6
    for code in (wrong, sms.datas[0]):
        requests.post(f"{server.url}/codes/verify", json={"phone": phone, "code": code}, timeout=5)
    # then: /metrics sums every gunicorn worker
    served = scrape(f"{server.url}/metrics", auth=ADMIN_KEY)
    assert served[("smscode_sends_accepted_total", ())] == 1
    assert served[("smscode_send_rejections_total", (("reason", "resend_interval"),))] == 1
    assert served[("smscode_verifications_total", (("outcome", "invalid"),))] == 1
    assert served[("smscode_verifications_total", (("outcome", "ok"),))] == 1
    # and the worker's exporter counts the delivery and times the provider call
    delivered = scrape(worker_metrics)
    assert delivered[("smscode_deliveries_total", (("outcome", "sent"),))] == 1
    assert delivered[("smscode_provider_latency_seconds_count", ())] == 1


def test_the_http_functions_metrics_need_an_api_key(
    own_stack: tuple[Server, Worker, str],
) -> None:
    server = own_stack[0]
    answer = requests.get(f"{server.url}/metrics", timeout=5)
    assert answer.status_code == 401
    assert answer.json()["error"] == "unauthorized"
    bearer = {"Authorization": "Bearer " + ":".join(ADMIN_KEY)}
    assert requests.get(f"{server.url}/metrics", headers=bearer, timeout=5).status_code == 200


def test_flush_emf_prints_what_changed_since_the_last_flush(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # given: whatever earlier flushes in this process emitted is forgotten
    metrics.flush_emf()
    capsys.readouterr()
    metrics.PrometheusMetrics().send_accepted()
    metrics.PrometheusMetrics().send_accepted()
    metrics.PrometheusMetrics().send_rejected("phone_daily")
    # when
    metrics.flush_emf()
    # then: one EMF object per changed counter, with the increase as its value
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    values = {
        (line["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"], line.get("reason")): line
        for line in lines
    }
    assert values[("sends_accepted", None)]["sends_accepted"] == [2.0]
    rejected = values[("send_rejections", "phone_daily")]
    assert rejected["send_rejections"] == [1.0]
    assert rejected["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "smscode"
    assert rejected["service"] == "smscode"
    # and a flush with nothing new prints nothing
    metrics.flush_emf()
    assert capsys.readouterr().out == ""
