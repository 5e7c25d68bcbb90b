"""Test helpers: fresh phone numbers and the real processes (server, worker) under test."""

from __future__ import annotations

import math
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import redis
import requests

from smscode.domain.messages import DeliveryMessage
from smscode.domain.phones import normalize
from smscode.service_layer.ports import Lease
from smscode_dev.embedded import free_port

# Mobile blocks phonenumbers knows as valid; the rest of the digits are random, so tests
# rarely share a phone or a seven-digit prefix.
_BLOCKS = ("130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152",
           "155", "156", "157", "158", "159", "176", "177", "178", "180", "181", "182", "183",
           "185", "186", "187", "188", "189", "198", "199")  # fmt: skip


# A provider called directly, outside a delivery: no lease in Redis, no attempt deadline (each
# HTTP call is still over within its own connect and read timeouts).
NO_LEASE = Lease(token="", deadline=math.inf)


def fresh_phone() -> str:
    """A random valid mainland-China mobile, 11 digits."""
    while True:
        candidate = random.choice(_BLOCKS) + "".join(random.choices("0123456789", k=8))
        try:
            normalize(candidate)
        except Exception:  # noqa: S112 - an unassigned block: draw again
            continue
        return candidate


@contextmanager
def local_timezone(tz: str) -> Iterator[None]:
    """The process's local time zone (TZ) set to `tz` for the block, then restored."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = tz
    time.tzset()
    try:
        yield
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()


@contextmanager
def emptied(url: str) -> Iterator[redis.Redis]:
    """A client on a Redis database of a test's own, emptied before and after the block."""
    client = redis.Redis.from_url(url, decode_responses=True)
    client.flushdb()
    try:
        yield client
    finally:
        client.flushdb()
        client.close()


def redis_db(redis_url: str, db: int) -> str:
    """Database `db` of the Redis at `redis_url` (a broker or a test of its own)."""
    return urlsplit(redis_url)._replace(path=f"/{db}").geturl()


class Process:
    """A `smscode` subcommand (or `argv`) in its own process, its output kept in a file."""

    def __init__(
        self, command: str, env: Mapping[str, str], argv: Sequence[str] | None = None
    ) -> None:
        self.command = command
        self.argv = list(argv or [sys.executable, "-m", "smscode", command])
        self.env = {**os.environ, **env}
        self.log = Path(tempfile.mkstemp(prefix=f"smscode-{command}-", suffix=".log")[1])
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        """Start the process (output to self.log)."""
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def output(self) -> str:
        """Everything the process printed so far."""
        return self.log.read_text(errors="replace")

    def wait_for_output(self, text: str, timeout: float = 20.0) -> None:
        """Block until the output contains `text`."""
        deadline = time.monotonic() + timeout
        while text not in self.output():
            assert self.process is not None
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.command} did not print {text!r}:\n{self.output()}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


@contextmanager
def started(*processes: Process) -> Iterator[None]:
    """Start the processes in order and stop every one at the end, whatever happens."""
    try:
        for process in processes:
            process.start()
        yield
    finally:
        for process in processes:
            process.stop()


class Server(Process):
    """`smscode serve` on a free port; ready once /healthz answers."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.port = free_port()
        super().__init__("serve", {**env, "PORT": str(self.port)})
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        """Start and wait until the function answers."""
        super().start()
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{self.url}/", timeout=1)
                return self
            except requests.ConnectionError:
                assert self.process is not None
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"server did not start:\n{self.output()}") from None
                time.sleep(0.1)


class Worker(Process):
    """`smscode worker`; ready once Celery says so."""

    def __init__(self, env: Mapping[str, str]) -> None:
        super().__init__("worker", env)

    def start(self) -> Worker:
        """Start and wait until the worker consumes."""
        super().start()
        self.wait_for_output("ready.", timeout=30)
        return self


class DevCommand:
    """`smscode dev …` as a newcomer runs it: its own process group, output kept in a file."""

    def __init__(self, log: Path, *args: str, env: Mapping[str, str]) -> None:
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "smscode", "dev", *args],
                env=dict(env),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._started: list[psutil.Process] = []

    def output(self) -> str:
        """Everything the command printed so far."""
        return self.log.read_text(errors="replace")

    def read_until(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        """The first match of `pattern` in the output, waiting for it to appear."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if match := re.search(pattern, self.output()):
                return match
            time.sleep(0.1)
        raise AssertionError(f"no {pattern!r} in:\n{self.output()}")

    def sign_up(self, port: int) -> tuple[str, dict[str, Any]]:
        """Ask for a code as the page does, read it from the printed SMS, and verify it.

        Returns the phone (11 digits) and the verification's JSON answer.
        """
        phone = fresh_phone()
        base = f"http://127.0.0.1:{port}"
        answer = requests.post(f"{base}/codes", data={"mobile": phone}, timeout=5)
        assert answer.status_code == 202
        code = self.read_until(rf"SMS to \+86{phone}: your code is (\d{{6}})")[1]
        body = {"phone": phone, "code": code}
        verified: dict[str, Any] = requests.post(
            f"{base}/codes/verify", json=body, timeout=5
        ).json()
        assert verified["status"] == "success"
        return phone, verified

    def interrupt(self) -> None:
        """Ctrl-C, which a terminal sends to the whole foreground process group."""
        self._started = psutil.Process(self.process.pid).children(recursive=True)
        os.killpg(self.process.pid, signal.SIGINT)
        self.process.wait(timeout=30)

    def group_gone(self, timeout: float = 10) -> bool:
        """Whether the group and every process dev had started have exited within `timeout`.

        The processes are those alive just before the interrupt, whatever group they lead.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.killpg(self.process.pid, 0)
            except ProcessLookupError:
                _, alive = psutil.wait_procs(
                    self._started, timeout=max(0.1, deadline - time.monotonic())
                )
                return not alive
            time.sleep(0.1)
        return False


def delivery_message() -> DeliveryMessage:
    """A queue message for a publisher to carry (its code is not really sealed: never delivered)."""
    now = datetime.now(UTC)
    return DeliveryMessage(
        message_id=uuid.uuid4().hex,
        request_id=uuid.uuid4().hex,
        phone=f"+86{fresh_phone()}",
        sealed_code="sealed",
        minutes=5,
        created_at=now,
        expires_at=now + timedelta(minutes=5),
    )


def block_phones(count: int, block: str | None = None) -> list[str]:
    """`count` distinct valid phones sharing one fresh seven-digit number block (or `block`)."""
    block = block or fresh_phone()[:7]
    phones: set[str] = set()
    while len(phones) < count:
        phones.add(block + "".join(random.choices("0123456789", k=4)))
    return sorted(phones)


def send_and_verify(
    api: str,
    phone: str,
    code_of: Callable[[str], str | None],
    headers: Mapping[str, str] | None = None,
) -> None:
    """A real user: asks for a code, reads it from the SMS (`code_of`), and verifies it
    (with `headers` on both requests, e.g. the X-Forwarded-For of its own address)."""
    answer = requests.post(f"{api}/codes", json={"phone": phone}, headers=headers, timeout=10)
    assert answer.status_code == 202, answer.text
    deadline = time.monotonic() + 10
    while (code := code_of(phone)) is None:
        assert time.monotonic() < deadline, f"no SMS reached {phone}"
        time.sleep(0.02)
    body = {"phone": phone, "code": code}
    answer = requests.post(f"{api}/codes/verify", json=body, headers=headers, timeout=10)
    assert answer.status_code == 200, answer.text
