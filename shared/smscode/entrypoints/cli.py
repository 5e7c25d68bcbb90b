"""The `smscode` command line: serve, worker and dev (handed over to the dev package)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from smscode.adapters import logs
from smscode.settings import Settings, settings_or_exit


def _settings() -> Settings:
    """The settings (or exit 2 with one line); TEST_PHONES said at every start."""
    settings = settings_or_exit()
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
    from smscode.entrypoints import flask_app

    source = flask_app.__file__  # the module that defines the `handle` function
    argv = [
        sys.executable, "-m", "functions_framework", "--target", "handle",
        "--source", source, "--host", settings.host, "--port", str(settings.port),
    ]  # fmt: skip
    os.execv(sys.executable, argv)  # noqa: S606  (our own interpreter, fixed arguments)


def worker(_: argparse.Namespace) -> None:
    """Run the delivery worker: Celery's own, WORKER_CONCURRENCY threads, on any broker."""
    settings = _settings()
    from smscode.adapters import metrics

    logs.setup(settings.log_level)  # before Celery starts, so its start-up warnings are JSON
    metrics.serve_port(settings.metrics_port, settings.host)
    from smscode.entrypoints import celery_worker

    celery_worker.run(settings)


def dev(args: argparse.Namespace) -> None:
    """Hand over to the dev package (`python -m smscode_dev`) in this process's place.

    A new program, not an import: the runtime never loads the dev package, and the dev
    command's options and `--help` are its own.
    """
    argv = [sys.executable, "-m", "smscode_dev", *args.options]
    os.execv(sys.executable, argv)  # noqa: S606  (our own interpreter, our own module)


def parser() -> argparse.ArgumentParser:
    """The `smscode` command line: one subcommand each for serve, worker and dev."""
    top = argparse.ArgumentParser(
        prog="smscode",
        description="SMS verification codes: settings come from environment variables "
        "(docs/reference/settings.md).",
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, run, summary in (
        ("serve", serve, "run the HTTP function (functions-framework) on PORT (default 8080)"),
        ("worker", worker, "run the self-hosted delivery worker (Celery)"),
        ("dev", dev, "embedded Redis (if REDIS_URL is unset) + serve + worker, until Ctrl-C"),
    ):
        # dev's options, --help included, are the dev package's (smscode_dev/cli.py)
        command = commands.add_parser(
            name, help=summary, description=summary, add_help=name != "dev"
        )
        command.set_defaults(run=run)
    return top


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `smscode` console script."""
    command_line = parser()
    args, options = command_line.parse_known_args(argv)
    if options and args.command != "dev":
        command_line.error(f"unrecognized arguments: {' '.join(options)}")
    args.options = options
    args.run(args)
