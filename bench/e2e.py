"""(e) End to end: from the 202 to the fake provider holding the request, at a steady rate."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from bench import delivery, load, stack
from bench.phones import PhoneBases


@dataclass
class EndToEnd:
    """Latency percentiles (ms) from the 202, and how many made it.

    `p50_ms`/`p99_ms` run to the fake's answer (its latency included, as the target reads);
    `arrival_*` to the moment the request reached the fake.
    """

    rate: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    arrival_p50_ms: float
    arrival_p99_ms: float
    accepted: int
    delivered: int


def measure(
    env: dict[str, str], fake: stack.FakeProvider, bases: PhoneBases,
    rate: float, seconds: float, workers: int,
) -> EndToEnd:  # fmt: skip
    """Open-loop POST /codes at `rate` through the server, delivered by `workers` Celery workers."""
    delivery.empty_stores(env, fake)
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
        answered, arrived = dict(fake.received()), dict(fake.arrivals())
    finally:
        server.stop()
        for worker in pool:
            worker.stop()

    def percentiles(times: dict[str, float]) -> tuple[list[float], list[float]]:
        delays = sorted((times[p] - at) * 1000 for p, at in accepted.items() if p in times)
        return delays, statistics.quantiles(delays, n=100) if len(delays) > 1 else [0.0] * 99

    delays, cuts = percentiles(answered)
    _, arrival_cuts = percentiles(arrived)
    return EndToEnd(
        rate=rate,
        p50_ms=cuts[49],
        p99_ms=cuts[98],
        max_ms=delays[-1] if delays else 0.0,
        arrival_p50_ms=arrival_cuts[49],
        arrival_p99_ms=arrival_cuts[98],
        accepted=len(accepted),
        delivered=len(delays),
    )
