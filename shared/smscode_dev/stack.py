"""`smscode dev`: embedded Redis (when REDIS_URL is unset), serve and worker, until Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from smscode.settings import settings_or_exit

if TYPE_CHECKING:
    from smscode_dev.gcp import LocalGcp


def _signal_group(child: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, sig)


def _stop_all(children: Sequence[subprocess.Popen[bytes]]) -> None:
    """Stop each child with everything it started (gunicorn's workers), in 10 s at most.

    Each child leads its own process group: a gunicorn worker whose master was killed, or
    that lingers after its master exits, is still in that group and gets the final SIGKILL.
    """
    for child in children:
        _signal_group(child, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        _signal_group(child, signal.SIGKILL)


def new_signing_key() -> str:
    """A fresh Ed25519 key (PKCS#8 PEM) for this run's verification tokens."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )


def run(*, cloud: bool = False, gcp: bool = False) -> None:
    """Embedded Redis (when REDIS_URL is unset), serve and worker, until Ctrl-C.

    With --cloud, the worker is replaced by the cloud shape: moto as SQS and a poller that
    feeds batches to the Lambda SQS handler in this process (see smscode_dev.cloud).
    With --gcp, by the Google Cloud shape: the Pub/Sub emulator pushing to the delivery
    function under functions-framework (see smscode_dev.gcp).
    """
    env = dict(os.environ)
    env.setdefault("CODE_SECRET", secrets.token_urlsafe(32))
    env.setdefault("TOKEN_SIGNING_KEY", new_signing_key())

    def shutdown(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, shutdown)
    # Whatever was started is stopped however run() ends: Ctrl-C, a bad setting, a crash.
    with contextlib.ExitStack() as started:
        try:
            _run(started, env, cloud=cloud, gcp=gcp)
        except KeyboardInterrupt:
            print("smscode dev: stopping", flush=True)


def _run(started: contextlib.ExitStack, env: dict[str, str], *, cloud: bool, gcp: bool) -> None:
    """Start everything, each stop registered on `started`; return when a child exits."""
    commands = [[sys.executable, "-m", "smscode", "serve"]]
    if gcp:
        from smscode_dev.gcp import function_argv

        local_gcp = _start_gcp(env)
        started.callback(local_gcp.stop)
        commands.append(function_argv(local_gcp.function_port))
    elif not cloud:
        commands.append([sys.executable, "-m", "smscode", "worker"])
    local_cloud = None
    if cloud:
        from smscode_dev.cloud import LocalCloud

        local_cloud = LocalCloud().start()
        started.callback(local_cloud.stop)
        env.update(local_cloud.env)
        print(
            f"smscode dev: SQS (moto) at {local_cloud.endpoint}, queue {local_cloud.queue_url}",
            flush=True,
        )
    if not env.get("REDIS_URL"):
        from smscode_dev.embedded import EmbeddedRedis

        embedded = started.enter_context(EmbeddedRedis())
        env["REDIS_URL"] = embedded.url
        print(f"smscode dev: embedded Redis at {embedded.url}", flush=True)
    # A key for /admin and /metrics, random per run like CODE_SECRET, printed with the URL.
    dev_key = None
    if not env.get("API_KEYS"):
        dev_key = secrets.token_urlsafe(24)
        env["API_KEYS"] = f"dev:{dev_key}"
    os.environ.update(env)
    settings = settings_or_exit()
    children: list[subprocess.Popen[bytes]] = []
    started.callback(_stop_all, children)
    for argv in commands:
        # Own process groups: Ctrl-C reaches dev alone, and dev stops each whole tree.
        children.append(subprocess.Popen(argv, env=env, start_new_session=True))  # noqa: S603
    if local_cloud is not None:
        local_cloud.start_poller()
    # Print the URL once it answers, so whoever follows it (a person, a test) is not refused.
    deadline = time.monotonic() + 30
    while children[0].poll() is None and time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", settings.port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.1)
    print(f"smscode dev: open http://127.0.0.1:{settings.port}/", flush=True)
    if dev_key is not None:
        print(
            f"smscode dev: dashboard http://127.0.0.1:{settings.port}/admin "
            f"(user dev, password {dev_key})",
            flush=True,
        )
    while all(child.poll() is None for child in children):
        time.sleep(0.2)
    print("smscode dev: a process exited; stopping the rest", file=sys.stderr, flush=True)


def _start_gcp(env: dict[str, str]) -> LocalGcp:
    """The emulator, topic and push subscription; exit 2 with one line if a tool is missing."""
    from smscode_dev.gcp import LocalGcp, ToolMissing

    try:
        local_gcp = LocalGcp().start()
    except ToolMissing as error:
        print(f"smscode dev --gcp: {error}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    env.update(local_gcp.env)
    print(
        f"smscode dev: Pub/Sub emulator at {local_gcp.emulator.host}, topic {local_gcp.topic}, "
        f"pushing to the delivery function at {local_gcp.function_url}/",
        flush=True,
    )
    return local_gcp
