"""The self-hosted compose file and Dockerfile, checked for structure (Docker is not run here)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from smscode.settings import Settings

INFRA = Path(__file__).resolve().parents[2] / "infra"
SETTINGS = {name.upper() for name in Settings.model_fields}


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    compose = yaml.safe_load((INFRA / "docker-compose.yml").read_text())
    return compose["services"]  # type: ignore[no-any-return]


def test_the_stack_has_redis_the_http_function_the_worker_and_optional_rabbitmq(
    services: dict[str, dict[str, Any]],
) -> None:
    assert set(services) == {"redis", "http", "worker", "rabbitmq"}
    assert services["rabbitmq"]["profiles"] == ["rabbitmq"]
    for name in ("redis", "http", "worker"):
        assert "profiles" not in services[name], f"{name} must start without a profile"


def test_every_service_has_an_image_or_a_build_that_exists_and_a_healthcheck(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        if "build" in service:
            context = (INFRA / service["build"]["context"]).resolve()
            assert (context / service["build"]["dockerfile"]).is_file(), name
        test = service["healthcheck"]["test"]
        assert test[0] in ("CMD", "CMD-SHELL"), name
        assert len(test) > 1, name


def test_http_and_worker_run_smscode_with_settings_it_knows(
    services: dict[str, dict[str, Any]],
) -> None:
    http, worker = services["http"], services["worker"]
    assert http["command"] == ["smscode", "serve"]
    assert worker["command"] == ["smscode", "worker"]
    assert http["environment"]["HOST"] == "0.0.0.0"  # noqa: S104  (inside its container)
    assert any(str(port).endswith(":8080") for port in http["ports"])
    assert worker["environment"]["METRICS_PORT"] == "9100"
    assert "127.0.0.1:8080/healthz" in " ".join(http["healthcheck"]["test"])
    assert "127.0.0.1:9100/metrics" in " ".join(worker["healthcheck"]["test"])
    for service in (http, worker):
        unknown = set(service["environment"]) - SETTINGS
        assert not unknown, f"not settings of smscode: {unknown}"
        assert {"REDIS_URL", "CODE_SECRET", "CELERY_BROKER_URL"} <= set(service["environment"])
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
        assert service["depends_on"]["rabbitmq"]["required"] is False


def test_no_secret_is_written_into_the_compose_file(services: dict[str, dict[str, Any]]) -> None:
    for name in ("http", "worker"):
        env = services[name]["environment"]
        for key in ("CODE_SECRET", "RONGLIAN_ACC_TOKEN"):
            assert re.fullmatch(r"\$\{[A-Z_]+:[-?][^}]*\}", env[key]), f"{name} {key} is inline"
        assert env["CODE_SECRET"].startswith("${CODE_SECRET:?"), "CODE_SECRET must be required"


def test_the_image_is_python_slim_and_runs_as_a_non_root_user() -> None:
    dockerfile = (INFRA / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", dockerfile, re.MULTILINE)
    assert re.search(r"^RUN pip install ", dockerfile, re.MULTILINE)
    [user] = re.findall(r"^USER (\S+)$", dockerfile, re.MULTILINE)
    assert user not in ("root", "0")
    assert 'CMD ["smscode", "serve"]' in dockerfile
