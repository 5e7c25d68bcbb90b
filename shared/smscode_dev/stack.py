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

from smscode.entrypoints.cli import settings_or_exit


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


def run(*, cloud: bool = False) -> None:
    """Embedded Redis (when REDIS_URL is unset), serve and worker, until Ctrl-C.

    With --cloud, the worker is replaced by the cloud shape: moto as SQS and a poller that
    feeds batches to the Lambda SQS handler in this process (see smscode_dev.cloud).
    """
    env = dict(os.environ)
    env.setdefault("CODE_SECRET", secrets.token_urlsafe(32))
    env.setdefault("TOKEN_SIGNING_KEY", new_signing_key())
    local_cloud = None
    if cloud:
        from smscode_dev.cloud import LocalCloud

        local_cloud = LocalCloud().start()
        env.update(local_cloud.env)
        print(
            f"smscode dev: SQS (moto) at {local_cloud.endpoint}, queue {local_cloud.queue_url}",
            flush=True,
        )
    embedded = None
    if not env.get("REDIS_URL"):
        from smscode_dev.embedded import EmbeddedRedis

        embedded = EmbeddedRedis().start()
        env["REDIS_URL"] = embedded.url
        print(f"smscode dev: embedded Redis at {embedded.url}", flush=True)
    os.environ.update(env)
    settings = settings_or_exit()
    children: list[subprocess.Popen[bytes]] = []

    def shutdown(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, shutdown)
    try:
        for command in ("serve",) if cloud else ("serve", "worker"):
            argv = [sys.executable, "-m", "smscode", command]
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
        while all(child.poll() is None for child in children):
            time.sleep(0.2)
        print("smscode dev: a process exited; stopping the rest", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        print("smscode dev: stopping", flush=True)
    finally:
        _stop_all(children)
        if local_cloud is not None:
            local_cloud.stop()
        if embedded is not None:
            embedded.stop()
