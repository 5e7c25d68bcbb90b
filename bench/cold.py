"""(d) Cold start: the wall time to import each function module in a fresh interpreter."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.stack import CODE_SECRET, ROOT

# name: (folder put first on sys.path, module imported)
MODULES = {
    "hello world (reference)": (ROOT / "bench" / "hello", "main"),
    "functions/issue_code/main.py (functions-framework)": (
        ROOT / "functions" / "issue_code",
        "main",
    ),
    "functions/issue_code/handler.py (Lambda HTTP)": (ROOT / "functions" / "issue_code", "handler"),
    "functions/deliver_sms/main.py (Pub/Sub)": (ROOT / "functions" / "deliver_sms", "main"),
    "functions/deliver_sms/handler.py (Lambda SQS)": (
        ROOT / "functions" / "deliver_sms",
        "handler",
    ),
}
# The Lambda handlers' budgets above a bare interpreter's start (`python -c pass`), in ms.
BUDGETS = {
    "functions/issue_code/handler.py (Lambda HTTP)": 150.0,
    "functions/deliver_sms/handler.py (Lambda SQS)": 250.0,
}
_TIMED = "import time; t = time.perf_counter(); import {}; print(time.perf_counter() - t)"


@dataclass
class ColdStart:
    """Median import time of `main` over fresh interpreters, and its heaviest imports."""

    name: str
    median_ms: float
    runs_ms: list[float]
    above_bare_ms: float = 0.0  # median wall time of `python -c "import m"` minus `-c pass`
    above_bare_min_ms: float = 0.0  # the least of those differences: the figure least hit by
    # other processes on a shared machine
    top_cumulative: list[tuple[str, float]] = field(default_factory=list)
    top_self: list[tuple[str, float]] = field(default_factory=list)


def _env() -> dict[str, str]:
    # The Lambda configuration: SQS publisher; no settings are read at import, but a module
    # that did read them would find real ones, as on AWS.
    env = {key: value for key, value in os.environ.items() if not key.startswith("SMSCODE")}
    env.update(
        DELIVERY_BACKEND="sqs",
        SQS_QUEUE_URL="http://127.0.0.1:9/queue/smscode.fifo",
        REDIS_URL="redis://127.0.0.1:9/0",
        CODE_SECRET=CODE_SECRET,
    )
    return env


def _importtime(
    folder: Path, module: str
) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """The heaviest packages (cumulative) and modules (self time), in ms, from -X importtime."""
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        cwd=folder, env=_env(), capture_output=True, text=True, check=True,
    ).stderr  # fmt: skip
    rows: list[tuple[str, float, float]] = []
    top = module.split(".")[0]
    for line in err.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative_us, name = line.removeprefix("import time:").split("|")
        rows.append((name.rstrip(), float(self_us) / 1000, float(cumulative_us) / 1000))
    # Package roots (no dot) carry everything they pulled in: which libraries the module costs.
    roots = [r for r in rows if "." not in r[0].strip() and r[0].strip() != top]
    by_cumulative = sorted(roots, key=lambda r: -r[2])[:6]
    by_self = sorted(rows, key=lambda r: -r[1])[:6]
    return (
        [(name.strip(), round(c, 1)) for name, _, c in by_cumulative],
        [(name.strip(), round(s, 1)) for name, s, _ in by_self],
    )


def _wall_ms(folder: Path, code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=folder, env=_env(), check=True)
    return (time.perf_counter() - start) * 1000


def measure(runs: int = 7) -> list[ColdStart]:
    """Each module imported in `runs` fresh interpreters (bytecode already compiled).

    Two figures: the import alone, timed inside the interpreter, and the whole process's
    wall time above a bare `python -c pass` started right before it (what a cold start adds).
    """
    results = []
    for name, (folder, module) in MODULES.items():
        argv = [sys.executable, "-c", f"import {module}"]
        subprocess.run(argv, cwd=folder, env=_env(), check=True)  # compiles, caches
        times, above = [], []
        for _ in range(runs):
            out = subprocess.run(
                [sys.executable, "-c", _TIMED.format(module)],
                cwd=folder, env=_env(), capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
            times.append(float(out.strip()) * 1000)
            bare = _wall_ms(folder, "pass")
            above.append(_wall_ms(folder, f"import {module}") - bare)
        cumulative, own = _importtime(folder, module)
        results.append(
            ColdStart(
                name,
                statistics.median(times),
                sorted(times),
                statistics.median(above),
                min(above),
                cumulative,
                own,
            )
        )
    return results
