"""The report: every figure as Markdown, each target with PASS or MISS."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from bench.cold import BUDGETS, ColdStart
from bench.cpu import CpuCost
from bench.delivery import DeliveryFigure
from bench.e2e import EndToEnd
from bench.http_path import HttpFigures, RedisCost
from bench.publish import PublishCost

RESULTS = Path(__file__).resolve().parent / "results"


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def _mid(values: list[float]) -> float:
    """The middle value (the upper of the two middle ones of an even count)."""
    return sorted(values)[len(values) // 2]


def _spread(values: list[float]) -> str:
    return f"{min(values):.2f}-{max(values):.2f}" if len(values) > 1 else f"{values[0]:.2f}"


def _per(counts: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:g}" for name, value in counts.items()) or "none"


@dataclass
class Report:
    """What one `make bench` measured."""

    machine: str
    tool: str
    started: datetime
    http: list[HttpFigures] = field(default_factory=list)
    cpu: CpuCost | None = None
    redis: RedisCost | None = None
    publish: PublishCost | None = None
    delivery: list[DeliveryFigure] = field(default_factory=list)
    cold: list[ColdStart] = field(default_factory=list)
    e2e: EndToEnd | None = None
    elapsed: float = 0.0
    broker: str = "same"  # the Celery broker: the code store's Redis, or a separate one
    provider_latency_ms: float = 100.0
    targets: list[str] = field(default_factory=list)

    def _target(self, name: str, figure: str, goal: str, ok: bool) -> None:
        self.targets.append(f"| {name} | {figure} | {goal} | **{_verdict(ok)}** |")

    def render(self) -> str:
        """The whole report as Markdown."""
        self.targets = []
        lines = [
            f"# smscode bench, {self.started:%Y-%m-%d %H:%M} UTC",
            "",
            f"Machine: {self.machine}. Load generator: {self.tool}. Celery broker: {self.broker} "
            f"Redis as the code store. Took {self.elapsed:.0f} s.",
            "",
        ]
        lines += (
            self._cpu()
            + self._http()
            + self._redis()
            + self._delivery()
            + self._cold()
            + self._e2e()
        )
        # The sections fill self.targets as they render, so the table is put in afterwards.
        table = ["## Targets", "", "| target | measured | goal | verdict |", "|---|---|---|---|"]
        return "\n".join(lines[:4] + table + self.targets + [""] + lines[4:])

    def _cpu(self) -> list[str]:
        c = self.cpu
        if c is None:
            return []
        lines = [
            "## (p) CPU per call in one process (the API without its HTTP server)",
            "",
            "| call | CPU us |",
            "|---|---|",
            *(f"| {name} | {us:.0f} |" for name, us in c.per_call_us.items()),
            "",
            "Top of the profile, `POST /codes` with new phones (cProfile on CPU time, cumulative):",
            "",
            "```",
            *c.profile,
            "```",
            "",
        ]
        return lines

    def _http(self) -> list[str]:
        if not self.http:
            return []
        head = self.http[0]
        mid_new, mid_same = _mid(head.new_ratios), _mid(head.same_ratios)
        self._target(
            "send path (new phones) vs hello world",
            f"{mid_new:.2f}x ({_spread(head.new_ratios)}); {head.new.rps:.0f} vs "
            f"{head.hello.rps:.0f} req/s",
            ">= 0.70x",
            mid_new >= 0.70,
        )
        if head.seed is not None:
            mid_seed = _mid(head.seed_ratios)
            self._target(
                "send path (new phones) vs the seed's Django view",
                f"{mid_seed:.2f}x ({_spread(head.seed_ratios)}); {head.new.rps:.0f} vs "
                f"{head.seed.rps:.0f} "
                "req/s",
                ">= 3x",
                mid_seed >= 3,
            )
        self._target(
            "429 path vs hello world",
            f"{mid_same:.2f}x ({_spread(head.same_ratios)}); {head.same.rps:.0f} req/s",
            ">= 0.90x",
            mid_same >= 0.90,
        )
        if head.verify is not None:
            mid_verify = _mid(head.verify_ratios)
            self._target(
                "POST /codes/verify vs hello world",
                f"{mid_verify:.2f}x ({_spread(head.verify_ratios)}); {head.verify.rps:.0f} req/s",
                ">= 0.70x",
                mid_verify >= 0.70,
            )
        lines = [
            "## (a) POST /codes next to hello world (same server, 50 connections)",
            "",
            "| workers x threads | hello req/s | new phones req/s | ratio (spread) "
            "| one phone (429) req/s | ratio (spread) | p50/p99 ms hello / new / 429 |",
            "|---|---|---|---|---|---|---|",
        ]
        for f in self.http:
            lines.append(
                f"| {f.workers} x {f.threads} | {f.hello.rps:.0f} | {f.new.rps:.0f} "
                f"| {_mid(f.new_ratios):.2f} ({_spread(f.new_ratios)}) "
                f"| {f.same.rps:.0f} | {_mid(f.same_ratios):.2f} ({_spread(f.same_ratios)}) "
                f"| {f.hello.p50_ms:.1f}/{f.hello.p99_ms:.1f} / {f.new.p50_ms:.1f}/"
                f"{f.new.p99_ms:.1f} / {f.same.p50_ms:.1f}/{f.same.p99_ms:.1f} |"
            )
        if head.verify is not None and head.seed is not None:
            lines += [
                "",
                f"First row, same runs: `POST /codes/verify` (a new phone each time, one script "
                f"call) {head.verify.rps:.0f} req/s, ratio {_spread(head.verify_ratios)}, "
                f"p50/p99 {head.verify.p50_ms:.1f}/{head.verify.p99_ms:.1f} ms; the seed's "
                f"Django view (new phones, no worker) {head.seed.rps:.0f} req/s, p50/p99 "
                f"{head.seed.p50_ms:.1f}/{head.seed.p99_ms:.1f} ms, statuses "
                f"{head.seed.statuses}; smscode new phones / seed {_spread(head.seed_ratios)}.",
            ]
        if head.round_trip is not None:
            lines += [
                "",
                f"The floor of a path that asks Redis once (send, verify): hello world after one "
                f"PING through redis-py, same server, {head.round_trip.rps:.0f} req/s, ratio to "
                f"hello {_spread(head.round_trip_ratios)}.",
            ]
        lines += self._cpu_per_request(head)
        lines += [
            "",
            f"The first row ({head.workers} x {head.threads}, the bench default) is the median of "
            f"{len(head.new_ratios)} interleaved runs; the others are one run each.",
            "Status counts, first row: "
            f"hello {head.hello.statuses}, new {head.new.statuses}, 429 {head.same.statuses}; "
            f"socket errors {head.hello.errors}/{head.new.errors}/{head.same.errors}.",
            "",
        ]
        return lines

    @staticmethod
    def _cpu_per_request(head: HttpFigures) -> list[str]:
        """Where each path's cores go: on a saturated machine req/s goes as 1 / CPU per request."""
        if not head.cpu_us or "hello" not in head.cpu_us:
            return []
        names = {
            "hello": "hello world",
            "new": "POST /codes, new phones",
            "same": "POST /codes, 429",
            "verify": "POST /codes/verify",
            "seed": "the seed's Django view",
            "round_trip": "hello world + one Redis PING (redis-py)",
        }
        hello = sum(head.cpu_us["hello"])
        lines = [
            "",
            "CPU per answered request, first row (medians of the repeats): the serving processes "
            "(gunicorn master and workers) and the code store's Redis. The load generator's "
            "share is left out. A ratio R to hello world needs a path's sum to be at most "
            "hello's / R.",
            "",
            "| path | server us | Redis us | sum us | hello's sum / this sum |",
            "|---|---|---|---|---|",
        ]
        for mode, (server, store) in head.cpu_us.items():
            total = server + store
            share = f"{hello / total:.2f}" if total else ""
            lines.append(f"| {names[mode]} | {server:.0f} | {store:.0f} | {total:.0f} | {share} |")
        return lines

    def _redis(self) -> list[str]:
        r = self.redis
        if r is None:
            return []
        # The decision is one script call; with the broker on the code store's Redis that same
        # call queues the message (one round trip in all); a refusal remembered by the
        # process needs none.
        same = r.broker_per_accepted == {}
        accepted_ok = r.accepted_commands.get("EVALSHA", 0) == 1 and (
            r.accepted_round_trips == 1 or not same
        )
        decision_ok = accepted_ok and r.rejected_round_trips <= 1
        self._target(
            "Redis round trips per send (code store)",
            f"accepted {r.accepted_round_trips:g} ({_per(r.accepted_commands)}), "
            f"refused {r.rejected_round_trips:g}",
            "1 script call per accepted send, enqueue included when the broker is the same "
            "Redis; <= 1 per refusal",
            decision_ok,
        )
        return [
            "## (b) Redis commands per send",
            "",
            "Client round trips to the code store (MONITOR over 50 sends each way, warm server):",
            f"- accepted: {r.accepted_round_trips:g} round trips, commands "
            f"{_per(r.accepted_commands)}; run inside the script: {r.accepted_in_scripts:g}",
            f"- rejected (429): {r.rejected_round_trips:g} round trips, commands "
            f"{_per(r.rejected_commands)}; run inside the script: {r.rejected_in_scripts:g}",
            "",
            "INFO commandstats deltas under load (script-internal commands included):",
            f"- code store per accepted send: {_per(r.accepted_stats)}",
            f"- code store per rejected send: {_per(r.rejected_stats)}",
            f"- broker (separate Redis) per accepted send, the Celery publish: "
            f"{_per(r.broker_per_accepted)}",
            "",
            *self._publish(),
        ]

    def _publish(self) -> list[str]:
        p = self.publish
        if p is None:
            return []
        return [
            f"CPU per publish in one process: Celery send_task {p.celery_us:.0f} us, smscode's "
            f"direct protocol-2 publish {p.direct_us:.0f} us, one plain LPUSH of the same body "
            f"{p.lpush_us:.0f} us (send_task / direct: {p.celery_us / max(p.direct_us, 1):.1f}x).",
            "",
        ]

    def _delivery(self) -> list[str]:
        if not self.delivery:
            return []
        sqs = [d for d in self.delivery if d.name.startswith("SQS")]
        celery = [d for d in self.delivery if d not in sqs]
        if celery:
            # The target: one worker process (so at most about one core), counted from its launch.
            single = [d for d in celery if d.processes == 1] or celery
            best = max(single, key=lambda d: d.from_start)
            self._target(
                "delivery, one stock Celery worker, 100 ms provider, from worker start",
                f"{best.from_start:.0f} SMS/s at {best.cores:.2f} cores ({best.name})",
                ">= 500 SMS/s, <= 1 core",
                best.from_start >= 500 and best.cores <= 1.0,
            )
        if sqs:
            best = max(sqs, key=lambda d: d.sms_per_second / d.processes)
            per_process = best.sms_per_second / best.processes
            self._target(
                "delivery, SQS handler (batches of 10), 100 ms provider, per process",
                f"{per_process:.0f} SMS/s ({best.name})",
                ">= 1500 SMS/s",
                per_process >= 1500,
            )
        lines = [
            f"## (c) Delivery at {self.provider_latency_ms:.0f} ms provider latency",
            "",
            "| setup | SMS/s (steady, 10th-90th percentile arrivals) | SMS/s from worker start "
            "| worker cores | CPU per SMS, us | delivered |",
            "|---|---|---|---|---|---|",
        ]
        for d in self.delivery:
            start = f"{d.from_start:.0f}" if d.from_start else ""
            cores = f"{d.cores:.2f}" if d.cores else ""
            # a worker's cores over SMS/s from its start: its CPU (start-up included) per SMS
            per_sms = d.cpu_us_per_sms or (1e6 * d.cores / d.from_start if d.from_start else 0)
            lines.append(
                f"| {d.name} | {d.sms_per_second:.0f} | {start} | {cores} "
                f"| {per_sms:.0f} | {d.delivered}/{d.wanted} |"
            )
        return [*lines, ""]

    def _cold(self) -> list[str]:
        if not self.cold:
            return []
        lines = [
            "## (d) Cold import of each function module (DELIVERY_BACKEND=sqs)",
            "",
            "In this venv with the bytecode compiled; the Lambda handlers also as the zip ships "
            "them (serverless.yml's files, `make lambda-deps`'s build/lambda, a bare interpreter, "
            "nothing written), when build/lambda exists.",
            "",
            "| module | import, median ms | process above `python -c pass`, median (least) ms "
            "| runs ms "
            "| heaviest imports, cumulative ms | heaviest, self ms |",
            "|---|---|---|---|---|---|",
        ]
        for c in self.cold:
            if c.name in BUDGETS:
                self._target(
                    f"cold import above `python -c pass`, {c.name}",
                    f"{c.above_bare_ms:.0f} ms median, {c.above_bare_min_ms:.0f} least "
                    f"(import alone {c.median_ms:.0f} ms)",
                    f"<= {BUDGETS[c.name]:.0f} ms",
                    c.above_bare_ms <= BUDGETS[c.name],
                )
            lines.append(
                f"| {c.name} | {c.median_ms:.0f} "
                f"| {c.above_bare_ms:.0f} ({c.above_bare_min_ms:.0f}) "
                f"| {', '.join(f'{t:.0f}' for t in c.runs_ms)} "
                f"| {_per(dict(c.top_cumulative))} | {_per(dict(c.top_self))} |"
            )
        return [*lines, ""]

    def _e2e(self) -> list[str]:
        e = self.e2e
        if e is None:
            return []
        goal = self.provider_latency_ms + 50
        self._target(
            f"end-to-end p99 at {e.rate:.0f} req/s",
            f"{e.p99_ms:.0f} ms",
            f"<= {goal:.0f} ms",
            e.p99_ms <= goal and e.delivered == e.accepted,
        )
        return [
            f"## (e) End to end at a steady {e.rate:.0f} req/s (open loop)",
            "",
            f"From the 202 to the fake provider accepting the SMS ({self.provider_latency_ms:.0f} "
            f"ms latency included): p50 {e.p50_ms:.1f} ms, p99 {e.p99_ms:.1f} ms, max "
            f"{e.max_ms:.1f} ms; {e.delivered} of {e.accepted} accepted sends delivered.",
            f"From the 202 to the request arriving at the fake: p50 {e.arrival_p50_ms:.1f} ms, "
            f"p99 {e.arrival_p99_ms:.1f} ms.",
            "",
        ]

    def save(self) -> Path:
        """Write the report to bench/results/latest.md (not committed; README quotes it)."""
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / "latest.md"
        path.write_text(self.render() + "\n")
        return path
