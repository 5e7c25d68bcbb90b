"""Run every benchmark and print each figure with its target; `python -m bench` (make bench)."""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import time
from datetime import UTC, datetime

from bench import cold, delivery, e2e, http_path, load, publish, stack
from bench.phones import PhoneBases
from bench.report import Report
from smscode_dev.embedded import EmbeddedRedis

PROVIDER_LATENCY = 0.100  # seconds, the fake's answer time for delivery and end to end


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
        "--only", default="atbcde", help="sections to run, e.g. 'ad' (t: serve tuning combos)"
    )
    args = parser.parse_args()
    report = Report(machine=_machine(), tool=load.tool(), started=datetime.now(UTC))
    bases = PhoneBases()
    begun = time.monotonic()
    # Two servers: the broker's publishes must not mix into the code store's command counts.
    with EmbeddedRedis() as codes, EmbeddedRedis() as broker:
        fake = stack.FakeProvider(latency=0.0)
        env = stack.base_env(codes.url, broker.url, fake.base_url)
        try:
            if "a" in args.only:
                report.http.append(http_path.measure(env, bases, args.seconds, args.repeats))
            if "t" in args.only:
                for workers, threads in ((2, 16), (4, 8), (1, 8)):
                    tuned = {**env, "SERVE_WORKERS": str(workers), "SERVE_THREADS": str(threads)}
                    report.http.append(http_path.measure(tuned, bases, args.seconds, 1, full=False))
            if "b" in args.only:
                report.redis = http_path.redis_cost(env, bases, args.seconds)
                report.publish = publish.measure(env["CELERY_BROKER_URL"])
            if "c" in args.only:
                fake.set_latency(PROVIDER_LATENCY)
                for processes, concurrency in ((1, 64), (1, 128), (2, 64)):
                    report.delivery.append(
                        delivery.celery(env, fake, bases, args.sends, processes, concurrency)
                    )
                for processes, invocations in ((1, 1), (1, 16), (1, 32)):
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
