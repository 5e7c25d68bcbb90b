"""Run every benchmark and print each figure with its target; `python -m bench` (make bench)."""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import time
from datetime import UTC, datetime

from bench import cold, cpu, delivery, e2e, http_path, load, publish, stack
from bench.phones import PhoneBases
from bench.report import Report
from smscode_dev.embedded import EmbeddedRedis

PROVIDER_LATENCY = 0.100  # seconds, the fake's answer time for delivery and end to end
# Section c: (worker processes, WORKER_CONCURRENCY) and (processes, concurrent invocations).
CELERY_ROWS = ((1, 64), (1, 128), (1, 256), (2, 128))
SQS_ROWS = ((1, 1), (1, 16), (1, 32))


def _machine() -> str:
    cpu = "unknown CPU"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        names = (line.split(":", 1)[1] for line in out.splitlines() if "Model name" in line)
        cpu = next(names).strip()
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}, {platform.system()}"


def main() -> None:
    """Start the stack, run (a) to (e), print and save the report."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--seconds", type=float, default=6.0, help="length of one load run")
    parser.add_argument("--repeats", type=int, default=3, help="runs of the headline setting")
    parser.add_argument("--sends", type=int, default=3000, help="messages per delivery run")
    parser.add_argument(
        "--grid",
        default="2x16,4x8,1x8",
        help="section t: the workers x threads settings tried besides SERVE_WORKERS x THREADS",
    )
    parser.add_argument(
        "--serve",
        default="2x8",
        help="the headline server setting, workers x threads (SERVE_WORKERS, SERVE_THREADS)",
    )
    parser.add_argument(
        "--broker",
        choices=("same", "separate"),
        default="same",
        help="the Celery broker: the code store's Redis (the default deployment) or its own",
    )
    parser.add_argument(
        "--only",
        default="patbcde",
        help="sections to run, e.g. 'ad' (p: CPU per call in-process, t: serve tuning combos)",
    )
    parser.add_argument(
        "--delivery",
        choices=("celery", "sqs", "both"),
        default="both",
        help="section c: the Celery worker rows, the SQS handler rows, or both",
    )
    args = parser.parse_args()
    report = Report(machine=_machine(), tool=load.tool(), started=datetime.now(UTC))
    report.broker = args.broker
    bases = PhoneBases()
    begun = time.monotonic()
    # By default the broker is the code store (CELERY_BROKER_URL unset in a deployment): the
    # send's enqueue rides in issue.lua. `--broker separate` measures a broker of its own.
    with EmbeddedRedis() as codes, EmbeddedRedis() as other:
        fake = stack.FakeProvider(latency=0.0)
        broker = codes.url if args.broker == "same" else other.url
        workers, threads = args.serve.split("x")
        env = stack.base_env(
            codes.url, broker, fake.base_url, SERVE_WORKERS=workers, SERVE_THREADS=threads
        )
        try:
            if "p" in args.only:
                report.cpu = cpu.measure(env, bases.next_base())
            if "a" in args.only:
                report.http.append(http_path.measure(env, bases, args.seconds, args.repeats))
            if "t" in args.only:
                for setting in args.grid.split(","):
                    workers, threads = setting.split("x")
                    tuned = {**env, "SERVE_WORKERS": str(workers), "SERVE_THREADS": str(threads)}
                    report.http.append(http_path.measure(tuned, bases, args.seconds, 1, full=False))
            if "b" in args.only:
                report.redis = http_path.redis_cost(env, bases, args.seconds)
                report.publish = publish.measure(env["CELERY_BROKER_URL"])
            if "c" in args.only:
                fake.set_latency(PROVIDER_LATENCY)
                for processes, concurrency in CELERY_ROWS * (args.delivery != "sqs"):
                    report.delivery.append(
                        delivery.celery(env, fake, bases, args.sends, processes, concurrency)
                    )
                for processes, invocations in SQS_ROWS * (args.delivery != "celery"):
                    n = args.sends if invocations > 1 else 300
                    report.delivery.append(
                        delivery.sqs(env, fake, bases, n, processes, invocations)
                    )
            if "d" in args.only:
                report.cold = cold.measure()
            if "e" in args.only:
                fake.set_latency(PROVIDER_LATENCY)
                report.e2e = e2e.measure(env, fake, bases, rate=200, seconds=10, workers=1)
        finally:
            fake.stop()
    report.elapsed = time.monotonic() - begun
    report.provider_latency_ms = PROVIDER_LATENCY * 1000
    print(report.render(), flush=True)
    report.save()


if __name__ == "__main__":
    main()
