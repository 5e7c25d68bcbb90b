"""The `smscode` command line: serve, worker and dev."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from smscode.adapters import logs
from smscode.settings import Settings, SettingsError, load_settings


def settings_or_exit() -> Settings:
    """The settings, or exit 2 with one line naming the bad variable."""
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
    settings = settings_or_exit()
    os.environ["WORKERS"] = str(settings.serve_workers)
    os.environ["THREADS"] = str(settings.serve_threads)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir(settings.port)
    from smscode.entrypoints import flask_app

    source = flask_app.__file__  # the module that defines the `handle` function
    argv = [
        sys.executable, "-m", "functions_framework", "--target", "handle",
        "--source", source, "--host", settings.host, "--port", str(settings.port),
    ]  # fmt: skip
    os.execv(sys.executable, argv)  # noqa: S606  (our own interpreter, fixed arguments)


def worker(_: argparse.Namespace) -> None:
    """Run the delivery worker: Celery's own, WORKER_CONCURRENCY threads, on any broker."""
    settings = settings_or_exit()
    from smscode.adapters import metrics

    logs.setup(settings.log_level)  # before Celery starts, so its start-up warnings are JSON
    metrics.serve_port(settings.metrics_port, settings.host)
    from smscode.entrypoints import celery_worker

    celery_worker.run(settings)


def dev(args: argparse.Namespace) -> None:
    """The local stack (`smscode_dev`, never imported by the runtime otherwise)."""
    from smscode_dev.stack import run

    run(cloud=args.cloud, gcp=args.gcp)


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
            shapes = command.add_mutually_exclusive_group()  # one queue between the functions
            shapes.add_argument(
                "--cloud",
                action="store_true",
                help="the cloud shape instead of Celery: SQS (moto) and the Lambda SQS handler",
            )
            shapes.add_argument(
                "--gcp",
                action="store_true",
                help="the Google Cloud shape instead of Celery: the Pub/Sub emulator pushing "
                "to the CloudEvent delivery function under functions-framework",
            )
    args = parser.parse_args(argv)
    args.run(args)
