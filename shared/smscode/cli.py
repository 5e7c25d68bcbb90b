"""The `smscode` command line: serve, worker and dev."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from smscode import logs
from smscode.settings import Settings, SettingsError, load_settings

# The entry points live beside the package in the repository (shared/ and functions/).
FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"


def _settings() -> Settings:
    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"smscode: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    if settings.test_phones:  # allowed explicitly, yet it must never go unnoticed
        logs.setup(settings.log_level)
        logging.getLogger("smscode.cli").warning(
            "TEST_PHONES active: %d phones get fixed codes and no SMS", len(settings.test_phones)
        )
    return settings


def _metrics_dir(port: int) -> str:
    """An emptied folder for prometheus_client's multiprocess files, one per user and port.

    gunicorn runs several worker processes; each writes its counters to files here and
    /metrics sums them, so a scrape sees the whole server, not whichever worker answered.
    """
    chosen = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or str(
        Path(tempfile.gettempdir()) / f"smscode-metrics-{os.getuid()}-{port}"
    )
    Path(chosen).mkdir(parents=True, exist_ok=True)
    for stale in Path(chosen).glob("*.db"):  # files of an earlier run would be summed in
        stale.unlink()
    return chosen


def serve(_: argparse.Namespace) -> None:
    """Run the HTTP function under functions-framework's gunicorn server."""
    settings = _settings()
    os.environ["WORKERS"] = str(settings.serve_workers)
    os.environ["THREADS"] = str(settings.serve_threads)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir(settings.port)
    source = FUNCTIONS / "issue_code" / "main.py"
    argv = [
        sys.executable, "-m", "functions_framework", "--target", "handle",
        "--source", str(source), "--host", settings.host, "--port", str(settings.port),
    ]  # fmt: skip
    os.execv(sys.executable, argv)  # noqa: S606  (our own interpreter, fixed arguments)


def worker(_: argparse.Namespace) -> None:
    """Run the Celery delivery worker (thread pool, sized by WORKER_CONCURRENCY)."""
    settings = _settings()
    from smscode import metrics
    from smscode.worker import create_worker_app

    logs.setup(settings.log_level)  # before Celery starts, so its start-up warnings are JSON
    metrics.serve_port(settings.metrics_port, settings.host)
    # --quiet: no start-up banner, so every line the worker prints is one JSON log object.
    create_worker_app(settings).worker_main([
        "--quiet", "worker", "--pool=threads", f"--concurrency={settings.worker_concurrency}",
        f"--loglevel={settings.log_level}", "--without-gossip", "--without-mingle",
        "--without-heartbeat",
    ])  # fmt: skip


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


def dev(args: argparse.Namespace) -> None:
    """Embedded Redis (when REDIS_URL is unset), serve and worker, until Ctrl-C.

    With --cloud, the worker is replaced by the cloud shape: moto as SQS and a poller that
    feeds batches to the Lambda SQS handler in this process (see smscode.cloud_dev).
    """
    env = dict(os.environ)
    env.setdefault("CODE_SECRET", secrets.token_urlsafe(32))
    cloud = None
    if getattr(args, "cloud", False):
        from smscode.cloud_dev import LocalCloud

        cloud = LocalCloud().start()
        env.update(cloud.env)
        print(f"smscode dev: SQS (moto) at {cloud.endpoint}, queue {cloud.queue_url}", flush=True)
    embedded = None
    if not env.get("REDIS_URL"):
        from smscode.embedded import EmbeddedRedis

        embedded = EmbeddedRedis().start()
        env["REDIS_URL"] = embedded.url
        print(f"smscode dev: embedded Redis at {embedded.url}", flush=True)
    os.environ.update(env)
    settings = _settings()
    children: list[subprocess.Popen[bytes]] = []

    def shutdown(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, shutdown)
    try:
        for command in ("serve",) if cloud else ("serve", "worker"):
            argv = [sys.executable, "-m", "smscode", command]
            # Own process groups: Ctrl-C reaches dev alone, and dev stops each whole tree.
            children.append(subprocess.Popen(argv, env=env, start_new_session=True))  # noqa: S603
        if cloud is not None:
            cloud.start_poller()
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
        if cloud is not None:
            cloud.stop()
        if embedded is not None:
            embedded.stop()


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `smscode` console script."""
    parser = argparse.ArgumentParser(
        prog="smscode",
        description="SMS verification codes: settings come from environment variables "
        "(see README.md).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, run, summary in (
        ("serve", serve, "run the HTTP function (functions-framework) on PORT (default 8080)"),
        ("worker", worker, "run the self-hosted delivery worker (Celery)"),
        ("dev", dev, "embedded Redis (if REDIS_URL is unset) + serve + worker, until Ctrl-C"),
    ):
        command = commands.add_parser(name, help=summary, description=summary)
        command.set_defaults(run=run)
        if name == "dev":
            command.add_argument(
                "--cloud",
                action="store_true",
                help="the cloud shape instead of Celery: SQS (moto) and the Lambda SQS handler",
            )
    args = parser.parse_args(argv)
    args.run(args)
