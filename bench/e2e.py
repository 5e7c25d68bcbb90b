"""(e) End to end: from the 202 to the fake provider holding the request, at a steady rate."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from bench import delivery, load, stack
from bench.phones import PhoneBases


@dataclass
class EndToEnd:
    """Latency percentiles (ms) of accepted -> provider request, and how many made it."""

    rate: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    accepted: int
    delivered: int


def measure(
    env: dict[str, str], fake: stack.FakeProvider, bases: PhoneBases,
    rate: float, seconds: float, workers: int,
) -> EndToEnd:  # fmt: skip
    """Open-loop POST /codes at `rate` through the server, delivered by `workers` Celery workers."""
    delivery._fresh(env, fake)
    server = stack.smscode_server(env).start()
    pool = [stack.celery_worker(env).start() for _ in range(workers)]
    try:
        for worker in pool:
            worker.wait_for_output("ready.")
        base = bases.next_base()
        accepted = load.open_loop(server.url, rate, seconds, lambda n: str(base + n))
        deadline = time.monotonic() + 15
        while fake.count() < len(accepted) and time.monotonic() < deadline:
            time.sleep(0.2)
        arrivals = dict(fake.received())
    finally:
        server.stop()
        for worker in pool:
            worker.stop()
    delays = sorted(
        (arrivals[phone] - at) * 1000 for phone, at in accepted.items() if phone in arrivals
    )
    cuts = statistics.quantiles(delays, n=100) if len(delays) > 1 else [0.0] * 99
    return EndToEnd(
        rate=rate,
        p50_ms=cuts[49],
        p99_ms=cuts[98],
        max_ms=delays[-1] if delays else 0.0,
        accepted=len(accepted),
        delivered=len(delays),
    )
