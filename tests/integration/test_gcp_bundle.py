"""`make gcp-bundle`: each folder deploys as Cloud Run functions builds Python, and runs.

The buildpack pip-installs the folder's requirements.txt into a fresh environment, then
starts `functions-framework` with FUNCTION_TARGET, FUNCTION_SIGNATURE_TYPE, FUNCTION_SOURCE
and PORT. This does the same, with nothing of this checkout on the path.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from smscode_dev.bundle import FUNCTIONS, build
from smscode_dev.embedded import free_port
from smscode_dev.gcp import PubSubEmulator
from tests.conftest import stack_env
from tests.fakes.ronglian import FakeRonglian
from tests.gcp_helpers import eventarc_request, new_topic, pull_one
from tests.helpers import fresh_phone

ROOT = Path(__file__).parents[2]


def fresh_venv(folder: Path) -> Path:
    """A new virtual environment beside the bundle, holding its requirements.txt alone;
    its bin folder."""
    where = folder.parent / f"{folder.name}-venv"
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True)
    pip = [str(where / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "-r", str(folder / "requirements.txt")], check=True, timeout=900)
    return where / "bin"


@contextmanager
def as_the_buildpack_runs(
    bin_dir: Path, folder: Path, settings: Mapping[str, str], log: Path
) -> Iterator[str]:
    """functions-framework on the folder, configured by environment only; its base URL."""
    target, signature, _ = FUNCTIONS[folder.name]
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    env.update(settings)
    env.update({
        "FUNCTION_TARGET": target,
        "FUNCTION_SIGNATURE_TYPE": signature,
        "FUNCTION_SOURCE": str(folder / "main.py"),
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
    })  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(bin_dir / "functions-framework")],
            cwd=folder,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"{url}/", timeout=1)
                break
            except requests.ConnectionError:
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_the_bundles_install_from_their_requirements_alone_and_serve(
    tmp_path: Path,
    pubsub_emulator: PubSubEmulator,
    redis_url: str,
    fake_ronglian: FakeRonglian,
) -> None:
    # given the bundles, each installed as the buildpack would, into a fresh environment
    issue_code, deliver_sms = build(ROOT, tmp_path / "gcp")
    assert (issue_code.name, deliver_sms.name) == ("issue_code", "deliver_sms")
    started = time.monotonic()
    with ThreadPoolExecutor(2) as pool:  # pip mostly waits on the index: both at once
        issue_bin, deliver_bin = pool.map(fresh_venv, (issue_code, deliver_sms))
    installed = time.monotonic() - started
    topic, subscription = new_topic(pubsub_emulator)
    http_settings = stack_env(
        redis_url,
        fake_ronglian,
        DELIVERY_BACKEND="pubsub",
        PUBSUB_TOPIC=topic,
        PUBSUB_EMULATOR_HOST=pubsub_emulator.host,
    )
    phone = fresh_phone()
    with (
        as_the_buildpack_runs(issue_bin, issue_code, http_settings, tmp_path / "issue.log") as api,
        as_the_buildpack_runs(
            deliver_bin, deliver_sms, stack_env(redis_url, fake_ronglian), tmp_path / "dlv.log"
        ) as deliver,
    ):
        # when the HTTP function is asked for its health, its page and a code
        assert requests.get(f"{api}/healthz", timeout=5).json()["status"] == "ok"
        assert "<html" in requests.get(f"{api}/", timeout=5).text
        answer = requests.post(f"{api}/codes", json={"phone": phone}, timeout=10)
        assert answer.status_code == 202, answer.text
        # and the delivery function gets the published message as Eventarc sends it
        headers, body = eventarc_request(pull_one(pubsub_emulator, subscription), topic)
        pushed = requests.post(f"{deliver}/", headers=headers, data=body, timeout=30)
        # then it is acknowledged and the SMS is sent
        assert pushed.status_code == 200, (tmp_path / "dlv.log").read_text()
        [sms] = fake_ronglian.wait_for(1)
    assert sms.to == phone
    print(f"\n[gcp bundle] two fresh venvs from requirements.txt in {installed:.0f} s")
