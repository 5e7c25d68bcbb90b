"""Closed-loop load (wrk when installed, else a Python fallback) and an open-loop paced sender."""

from __future__ import annotations

import http.client
import json
import queue
import shutil
import statistics
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

SCRIPT = Path(__file__).resolve().parent / "wrk" / "codes.lua"


@dataclass
class LoadResult:
    """One closed-loop run: throughput, latency percentiles and the status counts."""

    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    statuses: dict[str, int] = field(default_factory=dict)


def tool() -> str:
    """The load generator this machine will use."""
    return "wrk" if shutil.which("wrk") else "python (wrk not installed)"


def closed_loop(
    url: str, mode: str, base: int, seconds: float, connections: int = 50
) -> LoadResult:
    """`connections` keep-alive connections sending back to back for `seconds`."""
    if shutil.which("wrk"):
        return _wrk(url, mode, base, seconds, connections)
    return _python(url, mode, base, seconds, connections)


def _wrk(url: str, mode: str, base: int, seconds: float, connections: int) -> LoadResult:
    argv = [
        "wrk", "-t2", f"-c{connections}", f"-d{seconds:.0f}s", "--timeout", "5s",
        "-s", str(SCRIPT), url, "--", mode, str(base),
    ]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("BENCH "))
    data = json.loads(line.removeprefix("BENCH "))
    return LoadResult(
        rps=data["requests"] / (data["duration_us"] / 1e6),
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        requests=data["requests"],
        errors=data["errors"],
        statuses=data["statuses"],
    )


def _body(mode: str, base: int, worker: int, n: int) -> tuple[str, bytes]:
    phone = base + worker * 1_000_000 + n if mode in ("new", "verify") else base
    if mode == "verify":
        return "/codes/verify", json.dumps({"phone": str(phone), "code": "000000"}).encode()
    return ("/" if mode == "hello" else "/codes"), json.dumps({"phone": str(phone)}).encode()


def _python(url: str, mode: str, base: int, seconds: float, connections: int) -> LoadResult:
    # A fallback only: Python threads cost the server CPU on a small machine, so the ratios
    # it yields are lower bounds. wrk is preferred and installed by `make bench`.
    host = urlsplit(url)
    deadline = time.monotonic() + seconds
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    errors = [0]
    lock = threading.Lock()

    def run(worker: int) -> None:
        conn = http.client.HTTPConnection(host.hostname or "", host.port, timeout=5)
        mine, codes, n = [], Counter[str](), 0
        while time.monotonic() < deadline:
            n += 1
            path, body = _body(mode, base, worker, n)
            start = time.perf_counter()
            try:
                conn.request("POST", path, body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                errors[0] += 1
                conn.close()
                continue
            mine.append(time.perf_counter() - start)
            codes[str(response.status)] += 1
        with lock:
            latencies.extend(mine)
            statuses.update(codes)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return LoadResult(
        rps=len(latencies) / seconds,
        p50_ms=cuts[49] * 1000,
        p99_ms=cuts[98] * 1000,
        requests=len(latencies),
        errors=errors[0],
        statuses=dict(statuses),
    )


def open_loop(
    url: str, rate: float, seconds: float, phone: Callable[[int], str], senders: int = 32
) -> dict[str, float]:
    """POST /codes at a steady `rate` for `seconds`, whatever the answers' pace.

    Returns the time.time() of each accepted phone's 202, keyed by the phone.
    """
    host = urlsplit(url)
    due: queue.Queue[int | None] = queue.Queue()
    accepted: dict[str, float] = {}
    lock = threading.Lock()

    def send() -> None:
        conn = http.client.HTTPConnection(host.hostname or "", host.port, timeout=5)
        while (n := due.get()) is not None:
            body = json.dumps({"phone": phone(n)}).encode()
            try:
                conn.request("POST", "/codes", body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                continue
            if response.status == 202:
                with lock:
                    accepted[phone(n)] = time.time()

    pool = [threading.Thread(target=send) for _ in range(senders)]
    for thread in pool:
        thread.start()
    start, total = time.monotonic(), int(rate * seconds)
    for n in range(total):
        wait = start + n / rate - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        due.put(n)
    for _ in pool:
        due.put(None)
    for thread in pool:
        thread.join()
    return accepted
