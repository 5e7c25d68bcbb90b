"""(p) CPU per request and per SMS in one process, and the top of the send path's profile.

CPU time (not wall time) of the API's own work, without the HTTP server: the figure that
moves least when other processes share the machine, so a before/after comparison holds
even when the throughput ratios drift.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class CpuCost:
    """Microseconds of CPU per call, and the profile's top lines for new phones."""

    per_call_us: dict[str, float] = field(default_factory=dict)
    profile: list[str] = field(default_factory=list)


def _cpu_us(call: Callable[[int], object], n: int) -> float:
    for i in range(50):
        call(-1 - i)  # warm: connections, scripts, caches
    start = time.process_time()
    for i in range(n):
        call(i)
    return (time.process_time() - start) / n * 1e6


def _profile(call: Callable[[int], object], n: int, top: int = 24) -> list[str]:
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    for i in range(n):
        call(i)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(top)
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls"))
    return lines[start:]


def measure(env: dict[str, str], base: int, n: int = 2000) -> CpuCost:
    """The API's send (new phones, a refused phone), verify and one delivery, n calls each.

    Log lines are formatted and written as in production (their CPU counts), to /dev/null.
    """
    saved = os.dup(2)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    try:
        return _measure(env, base, n)
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _measure(env: dict[str, str], base: int, n: int) -> CpuCost:
    os.environ.update(env)
    from smscode import bootstrap
    from smscode.entrypoints.http import api
    from smscode.entrypoints.intake import deliver_all
    from smscode.entrypoints.web import HttpRequest
    from smscode.settings import get_settings

    bootstrap.reset()
    get_settings.cache_clear()
    api.cache_clear()
    routes = api()

    def post(path: str, body: str) -> int:
        request = HttpRequest("POST", path, {"content-type": "application/json"},
                              body.encode(), "10.1.2.3")  # fmt: skip
        return routes.dispatch(request).status

    def new(i: int) -> int:
        return post("/codes", f'{{"phone":"{base + 100_000 + i}"}}')

    def same(_: int) -> int:
        return post("/codes", f'{{"phone":"{base}"}}')

    def verify(i: int) -> int:
        return post("/codes/verify", f'{{"phone":"{base + 300_000 + i}","code":"000000"}}')

    cost = CpuCost()
    cost.per_call_us["POST /codes, new phone (202)"] = _cpu_us(new, n)
    cost.per_call_us["POST /codes, one phone again (429)"] = _cpu_us(same, n)
    cost.per_call_us["POST /codes/verify, no code (400)"] = _cpu_us(verify, n)
    cost.profile = _profile(lambda i: post("/codes", f'{{"phone":"{base + 500_000 + i}"}}'), n)

    # One delivery per call through the intake (claim, open, provider, finish), a message
    # made by the same send path; the fake answers at once.
    payloads: list[str] = []
    from smscode.domain.messages import DeliveryMessage

    class Keep:
        def publish(self, message: DeliveryMessage) -> None:
            payloads.append(message.to_json())

    from smscode.adapters.metrics import PrometheusMetrics
    from smscode.service_layer.send import Sender

    settings = get_settings()
    secret = settings.code_secret.get_secret_value().encode()
    keep = Sender(bootstrap.policy(settings), bootstrap.store(), Keep(), bootstrap.sealer(),
                  secret, PrometheusMetrics())  # fmt: skip
    for i in range(n + 50):
        keep.issue(str(base + 700_000 + i), "10.9.9.9")
    queue = iter(payloads)
    cost.per_call_us["one delivery through the intake (fake at 0 ms)"] = _cpu_us(
        lambda _: deliver_all([next(queue)]), n
    )
    return cost
