"""`smscode dev`'s options; `smscode dev` runs `python -m smscode_dev` in its place."""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def parser() -> argparse.ArgumentParser:
    """The dev command's parser: one shape of the stack at a time."""
    summary = "embedded Redis (if REDIS_URL is unset) + serve + worker, until Ctrl-C"
    command = argparse.ArgumentParser(prog="smscode dev", description=summary)
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
    return command


def main(argv: Sequence[str] | None = None) -> None:
    """Run the local stack in the shape the options choose, until Ctrl-C."""
    args = parser().parse_args(argv)
    from smscode_dev.stack import run

    run(cloud=args.cloud, gcp=args.gcp)
