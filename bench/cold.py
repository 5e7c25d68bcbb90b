"""(d) Cold start: the wall time to import each function module in a fresh interpreter.

Two settings. In this venv, each module's bytecode compiled first (the figures of earlier
runs). And the Lambda handlers as the zip ships them: the files serverless.yml packages,
bytecode included or not as it says, on a bare interpreter with only `build/lambda`
(`make lambda-deps`) on its path and nothing written (/var/task is read-only).
"""

from __future__ import annotations

import fnmatch
import os
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bench.stack import CODE_SECRET, ROOT

HTTP = "functions/issue_code/handler.py (Lambda HTTP)"
SQS = "functions/deliver_sms/handler.py (Lambda SQS)"
SHIPPED = ", as the zip ships it"
# name: (folder put first on sys.path, module imported)
MODULES = {
    "hello world (reference)": (ROOT / "bench" / "hello", "main"),
    "functions/issue_code/main.py (functions-framework)": (
        ROOT / "functions" / "issue_code",
        "main",
    ),
    HTTP: (ROOT / "functions" / "issue_code", "handler"),
    "functions/deliver_sms/main.py (Pub/Sub)": (ROOT / "functions" / "deliver_sms", "main"),
    SQS: (ROOT / "functions" / "deliver_sms", "handler"),
}
# The Lambda handlers' budgets above a bare interpreter's start (`python -c pass`), in ms.
BUDGETS = {HTTP: 150.0, SQS: 250.0, HTTP + SHIPPED: 150.0, SQS + SHIPPED: 250.0}
_TIMED = "import time; t = time.perf_counter(); import {}; print(time.perf_counter() - t)"


@dataclass(frozen=True)
class _Subject:
    """What one row imports, where, with which interpreter and environment."""

    folder: Path
    module: str
    python: str
    env: dict[str, str]


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


def _env(**extra: str) -> dict[str, str]:
    # The Lambda configuration: SQS publisher; no settings are read at import, but a module
    # that did read them would find real ones, as on AWS. PYTHONDONTWRITEBYTECODE goes (unless
    # given): the first run compiles and caches, as the figures assume.
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("SMSCODE") and key not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")
    }
    env.update(
        DELIVERY_BACKEND="sqs",
        SQS_QUEUE_URL="http://127.0.0.1:9/queue/smscode.fifo",
        REDIS_URL="redis://127.0.0.1:9/0",
        CODE_SECRET=CODE_SECRET,
        **extra,
    )
    return env


def _importtime(subject: _Subject) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """The heaviest packages (cumulative) and modules (self time), in ms, from -X importtime."""
    err = subprocess.run(
        [subject.python, "-X", "importtime", "-c", f"import {subject.module}"],
        cwd=subject.folder, env=subject.env, capture_output=True, text=True, check=True,
    ).stderr  # fmt: skip
    rows: list[tuple[str, float, float]] = []
    top = subject.module.split(".")[0]
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


def _wall_ms(subject: _Subject, code: str) -> float:
    start = time.perf_counter()
    subprocess.run([subject.python, "-c", code], cwd=subject.folder, env=subject.env, check=True)
    return (time.perf_counter() - start) * 1000


def _measure(name: str, subject: _Subject, runs: int) -> ColdStart:
    """Two figures: the import alone, timed inside the interpreter, and the whole process's
    wall time above a bare `python -c pass` started right before it (what a cold start adds)."""
    _wall_ms(subject, f"import {subject.module}")  # compiles and caches, where it may
    times, above = [], []
    for _ in range(runs):
        out = subprocess.run(
            [subject.python, "-c", _TIMED.format(subject.module)],
            cwd=subject.folder, env=subject.env, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        times.append(float(out.strip()) * 1000)
        bare = _wall_ms(subject, "pass")
        above.append(_wall_ms(subject, f"import {subject.module}") - bare)
    cumulative, own = _importtime(subject)
    return ColdStart(
        name,
        statistics.median(times),
        sorted(times),
        statistics.median(above),
        min(above),
        cumulative,
        own,
    )


def _packaged(relative: str, patterns: list[str]) -> bool:
    """Whether serverless.yml's package patterns ship this path: the last match decides."""
    shipped = False
    for pattern in patterns:
        if fnmatch.fnmatchcase(relative, pattern.removeprefix("!").replace("**", "*")):
            shipped = not pattern.startswith("!")
    return shipped


@contextmanager
def _lambda_task() -> Iterator[tuple[Path, str] | None]:
    """The zip's files laid out as /var/task, and a bare interpreter; None without
    build/lambda (`make lambda-deps` not run)."""
    if not (ROOT / "build" / "lambda").is_dir():
        yield None
        return
    patterns: list[str] = yaml.safe_load((ROOT / "serverless.yml").read_text())["package"][
        "patterns"
    ]
    roots = [p.removesuffix("/**") for p in patterns if p.endswith("/**") and p[0] != "!"]
    with tempfile.TemporaryDirectory(dir=ROOT / "build", prefix="bench-task-") as tmp:
        task = Path(tmp) / "task"
        for root in roots:
            for path in (ROOT / root).rglob("*"):
                relative = path.relative_to(ROOT).as_posix()
                if path.is_file() and _packaged(relative, patterns):
                    (task / relative).parent.mkdir(parents=True, exist_ok=True)
                    os.link(path, task / relative)  # same file system: no copy
        venv.create(Path(tmp) / "python", with_pip=False)
        yield task, str(Path(tmp) / "python" / "bin" / "python")


def measure(runs: int = 7) -> list[ColdStart]:
    """Each module imported in `runs` fresh interpreters; then the Lambda handlers as shipped."""
    results = [
        _measure(name, _Subject(folder, module, sys.executable, _env()), runs)
        for name, (folder, module) in MODULES.items()
    ]
    with _lambda_task() as shipped:
        if shipped is not None:
            task, python = shipped
            # serverless.yml's PYTHONPATH, less /var/runtime (the runtime's own boto3)
            path = os.pathsep.join((str(task / "shared"), str(task / "build" / "lambda")))
            env = _env(PYTHONPATH=path, PYTHONDONTWRITEBYTECODE="1")
            for name in (HTTP, SQS):
                folder, module = MODULES[name]
                subject = _Subject(task / folder.relative_to(ROOT), module, python, env)
                results.append(_measure(name + SHIPPED, subject, runs))
    return results
