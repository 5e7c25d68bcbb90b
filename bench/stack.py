"""The processes a benchmark starts: Redis servers, the fake Ronglian, servers and workers."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from smscode_dev.embedded import free_port

ROOT = Path(__file__).resolve().parents[1]
CODE_SECRET = "bench-secret-0123456789abcdefghij"  # noqa: S105  (a throwaway store)


class Process:
    """A command in its own session (gunicorn forks workers), output kept in a log file."""

    def __init__(self, argv: list[str], env: Mapping[str, str], name: str) -> None:
        self.argv = argv
        self.env = {**os.environ, **env}
        self.log = Path(tempfile.mkstemp(prefix=f"bench-{name}-", suffix=".log")[1])
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        """Start the command."""
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.argv, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True, cwd=ROOT,
            )  # fmt: skip
        return self

    def wait_for_output(self, text: str, timeout: float = 30.0) -> None:
        """Block until the log holds `text`."""
        deadline = time.monotonic() + timeout
        while text not in self.log.read_text(errors="replace"):
            self._check(deadline)
            time.sleep(0.05)

    def _check(self, deadline: float) -> None:
        assert self.process is not None
        if self.process.poll() is not None or time.monotonic() > deadline:
            tail = self.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{self.argv[:4]} did not get ready:\n{tail}")

    def stop(self) -> None:
        """SIGTERM to the process group we created, SIGKILL after 10 s; drop the log."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.unlink(missing_ok=True)


def cpu_seconds(process: Process) -> float:
    """User + system CPU seconds of a running process and its children so far."""
    import psutil

    assert process.process is not None
    root = psutil.Process(process.process.pid)
    total = 0.0
    for each in [root, *root.children(recursive=True)]:
        times = each.cpu_times()
        total += times.user + times.system
    return total


class HttpServer(Process):
    """An HTTP server on a free port, ready once GET /healthz (or /) answers."""

    def __init__(self, argv: list[str], env: Mapping[str, str], name: str, port: int) -> None:
        super().__init__(argv, {**env, "PORT": str(port)}, name)
        self.url = f"http://127.0.0.1:{port}"

    def start(self) -> HttpServer:
        """Start and wait until it answers."""
        super().start()
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/", timeout=1).close()
                return self
            except OSError:
                self._check(deadline)
                time.sleep(0.1)


def smscode_server(env: Mapping[str, str]) -> HttpServer:
    """`smscode serve` (functions-framework + gunicorn, SERVE_WORKERS x SERVE_THREADS)."""
    argv = [sys.executable, "-m", "smscode", "serve"]
    return HttpServer(argv, env, "serve", free_port())


def hello_server(env: Mapping[str, str], target: str = "hello") -> HttpServer:
    """A reference function of bench/hello/main.py (hello world by default) under the same
    server, workers and threads as `smscode serve`."""
    port = free_port()
    argv = [
        sys.executable, "-m", "functions_framework", "--target", target,
        "--source", str(ROOT / "bench" / "hello" / "main.py"),
        "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    workers = {"WORKERS": env["SERVE_WORKERS"], "THREADS": env["SERVE_THREADS"]}
    return HttpServer(argv, {**env, **workers}, target, port)


def seed_server(env: Mapping[str, str]) -> HttpServer:
    """The seed's Django view (`bench/seed/app.py`) under gunicorn, same workers and threads.

    gthread workers, as functions-framework runs gunicorn when it has threads.
    """
    port = free_port()
    argv = [
        sys.executable, "-m", "gunicorn", "--workers", env["SERVE_WORKERS"],
        "--threads", env["SERVE_THREADS"], "--worker-class", "gthread", "--timeout", "0",
        "--bind", f"127.0.0.1:{port}", "--log-level", "error", "bench.seed.app:application",
    ]  # fmt: skip
    return HttpServer(argv, env, "seed", port)


def celery_worker(env: Mapping[str, str]) -> Process:
    """`smscode worker`: Celery's own worker."""
    return Process([sys.executable, "-m", "smscode", "worker"], env, "worker")


def _fake_main(conn: Connection, latency: float) -> None:
    from tests.fakes.ronglian import FakeRonglian

    fake = FakeRonglian(latency=latency).start()
    conn.send(fake.base_url)
    while True:
        command, argument = conn.recv()
        if command == "stop":
            fake.stop()
            conn.send(None)
            return
        if command == "reset":
            fake.reset()
            conn.send(None)
        elif command == "latency":
            fake.latency = float(argument)
            conn.send(None)
        elif command == "count":
            conn.send(len(fake.accepted))
        elif command == "received":  # (11-digit phone, time accepted): after the latency
            conn.send([(sms.to, sms.received_at) for sms in fake.accepted])
        elif command == "arrivals":  # (11-digit phone, time the request arrived)
            conn.send(
                [
                    (json.loads(raw.body)["to"], raw.received_at)
                    for raw in fake.requests
                    if raw.status == "000000"
                ]
            )


class FakeProvider:
    """The fake Ronglian in a process of its own, so its CPU and GIL are not the bench's."""

    def __init__(self, latency: float) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_fake_main, args=(child, latency), daemon=True)
        self._process.start()
        self.base_url: str = self._conn.recv()

    def _ask(self, command: str, argument: Any = None) -> Any:
        self._conn.send((command, argument))
        return self._conn.recv()

    def reset(self) -> None:
        """Forget every SMS."""
        self._ask("reset")

    def set_latency(self, seconds: float) -> None:
        """Answer each request after this long."""
        self._ask("latency", seconds)

    def count(self) -> int:
        """SMS accepted so far."""
        return int(self._ask("count"))

    def received(self) -> list[tuple[str, float]]:
        """(phone, time the fake accepted it, its latency later) of every SMS, oldest first."""
        return list(self._ask("received"))

    def arrivals(self) -> list[tuple[str, float]]:
        """(phone, time its request arrived) of every accepted SMS."""
        return list(self._ask("arrivals"))

    def stop(self) -> None:
        """Stop the fake and its process."""
        if self._process.is_alive():
            self._ask("stop")
            self._process.join(timeout=5)


def base_env(redis_url: str, broker_url: str, fake_url: str, **overrides: str) -> dict[str, str]:
    """Settings for the bench: ronglian through the fake, caps that never bite on new phones."""
    from tests.fakes.ronglian import DEFAULT_ACC_ID, DEFAULT_ACC_TOKEN, DEFAULT_APP_ID

    env = {
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": broker_url,
        "CODE_SECRET": CODE_SECRET,
        "SMS_PROVIDER": "ronglian",
        "RONGLIAN_ACC_ID": DEFAULT_ACC_ID,
        "RONGLIAN_ACC_TOKEN": DEFAULT_ACC_TOKEN,
        "RONGLIAN_APP_ID": DEFAULT_APP_ID,
        "RONGLIAN_BASE_URL": fake_url,
        "DELIVERY_BACKEND": "celery",
        "IP_HOURLY_LIMIT": "1000000000",
        "GLOBAL_MINUTE_LIMIT": "1000000000",
        "PREFIX_HOURLY_LIMIT": "1000000000",
        "PHONE_DAILY_LIMIT": "1000000000",
        # The pumping rule judges and counts every send as in production but never blocks
        # (load runs never verify): the send path's cost is measured with it.
        "PUMPING_MIN_CONVERSION": "0",
        "SERVE_WORKERS": "2",
        "SERVE_THREADS": "8",
        "WORKER_CONCURRENCY": "128",  # the default
        "LOG_LEVEL": "INFO",
        # A PYTHONPATH given to the bench goes first: `PYTHONPATH=<old tree>/shared` measures
        # that tree's code with this harness (the before/after tables in docs/benchmarks/).
        "PYTHONPATH": os.pathsep.join(filter(None, (os.environ.get("PYTHONPATH"), str(ROOT)))),
    }
    env.update(overrides)
    return env
