"""(a) POST /codes next to hello world on the same server, and (b) Redis commands per send."""

from __future__ import annotations

import json
import statistics
import threading
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field

import redis

from bench import load, stack
from bench.phones import PhoneBases


@dataclass
class HttpFigures:
    """Medians over the repeats of one workers x threads setting, and the spread of ratios."""

    workers: int
    threads: int
    hello: load.LoadResult
    new: load.LoadResult
    same: load.LoadResult
    new_ratios: list[float]
    same_ratios: list[float]
    verify: load.LoadResult | None = None
    verify_ratios: list[float] = field(default_factory=list)
    seed: load.LoadResult | None = None  # the seed's Django view, new phones
    seed_ratios: list[float] = field(default_factory=list)  # new phones / seed, per repeat
    round_trip: load.LoadResult | None = None  # hello world after one Redis PING
    round_trip_ratios: list[float] = field(default_factory=list)
    # mode: median CPU us per answered request of (the serving processes, the code store's
    # Redis); what the cores buy: a path's req/s on a saturated machine goes as 1 / their sum
    cpu_us: dict[str, tuple[float, float]] = field(default_factory=dict)


def _median(results: list[load.LoadResult]) -> load.LoadResult:
    statuses: Counter[str] = Counter()
    for result in results:
        statuses.update(result.statuses)
    return load.LoadResult(
        rps=statistics.median(r.rps for r in results),
        p50_ms=statistics.median(r.p50_ms for r in results),
        p99_ms=statistics.median(r.p99_ms for r in results),
        requests=sum(r.requests for r in results),
        errors=sum(r.errors for r in results),
        statuses=dict(statuses),
    )


def measure(
    env: dict[str, str], bases: PhoneBases, seconds: float, repeats: int, *, full: bool = True
) -> HttpFigures:
    """Hello, new phones, one repeated phone (and, `full`, verify and the seed's view), interleaved.

    Interleaving puts the same drift on every path of one repeat; the ratios are per repeat.
    """
    servers = {"smscode": stack.smscode_server(env), "hello": stack.hello_server(env)}
    if full:
        servers["seed"] = stack.seed_server(env)
        servers["round_trip"] = stack.hello_server(env, "round_trip")
    for server in servers.values():
        server.start()
    smscode = servers["smscode"]
    modes = ["hello", "new", "same", *(["verify", "seed", "round_trip"] if full else [])]
    runs: dict[str, list[load.LoadResult]] = {mode: [] for mode in modes}
    cpu: dict[str, list[tuple[float, float]]] = {mode: [] for mode in modes}
    store = redis.Redis.from_url(env["REDIS_URL"])

    def redis_cpu() -> float:
        info = store.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    def run(mode: str, length: float) -> load.LoadResult:
        server = servers.get(mode, smscode)
        before = stack.cpu_seconds(server), redis_cpu()
        wrk_mode = {"seed": "new", "round_trip": "hello"}.get(mode, mode)
        base = 0 if wrk_mode == "hello" else bases.next_base()
        result = load.closed_loop(server.url, wrk_mode, base, length)
        requests = max(1, result.requests)
        server_us = 1e6 * (stack.cpu_seconds(server) - before[0]) / requests
        cpu[mode].append((server_us, 1e6 * (redis_cpu() - before[1]) / requests))
        return result

    try:
        for mode in modes:  # warm: imports, connections, scripts
            run(mode, 2)
            cpu[mode].clear()
        for _ in range(repeats):
            for mode in modes:
                runs[mode].append(run(mode, seconds))
    finally:
        for server in servers.values():
            server.stop()
    hellos = runs["hello"]

    def ratios(mode: str, reference: list[load.LoadResult]) -> list[float]:
        return [r.rps / h.rps for h, r in zip(reference, runs.get(mode, []), strict=False)]

    return HttpFigures(
        workers=int(env["SERVE_WORKERS"]),
        threads=int(env["SERVE_THREADS"]),
        hello=_median(hellos),
        new=_median(runs["new"]),
        same=_median(runs["same"]),
        new_ratios=ratios("new", hellos),
        same_ratios=ratios("same", hellos),
        verify=_median(runs["verify"]) if full else None,
        verify_ratios=ratios("verify", hellos),
        seed=_median(runs["seed"]) if full else None,
        seed_ratios=ratios("new", runs.get("seed", [])),
        round_trip=_median(runs["round_trip"]) if full else None,
        round_trip_ratios=ratios("round_trip", hellos),
        cpu_us={
            mode: (statistics.median(s for s, _ in each), statistics.median(r for _, r in each))
            for mode, each in cpu.items()
        },
    )


@dataclass
class RedisCost:
    """Commands per send: client commands and round trips (MONITOR), commandstats under load."""

    accepted_commands: dict[str, float]
    rejected_commands: dict[str, float]
    accepted_round_trips: float
    rejected_round_trips: float
    accepted_in_scripts: float
    rejected_in_scripts: float
    accepted_stats: dict[str, float]
    rejected_stats: dict[str, float]
    broker_per_accepted: dict[str, float]


def _post(url: str, phone: str) -> int:
    body = json.dumps({"phone": phone}).encode()
    request = urllib.request.Request(
        f"{url}/codes", body, {"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


class _Monitor:
    """Counts commands the code store runs, split into client round trips and script calls."""

    def __init__(self, url: str) -> None:
        self.top: Counter[str] = Counter()
        self.in_scripts = 0
        self.round_trips = 0  # a MULTI ... EXEC pipeline is one round trip
        self._client = redis.Redis.from_url(url)
        self._marker = redis.Redis.from_url(url)
        self._marker.ping()  # connected now, so its handshake is not counted as the sends'
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._listen, daemon=True)

    def _listen(self) -> None:
        with self._client.monitor() as monitor:  # type: ignore[no-untyped-call]
            self._ready.set()
            in_transaction: set[str] = set()
            for event in monitor.listen():
                command = str(event["command"])
                if "bench-stop" in command:
                    return
                name = command.split(" ")[0].strip('"').upper()
                client = f"{event.get('client_address')}:{event.get('client_port')}"
                if event.get("client_type") == "lua":
                    self.in_scripts += 1
                    continue
                self.top[name] += 1
                if client not in in_transaction:
                    self.round_trips += 1
                if name == "MULTI":
                    in_transaction.add(client)
                elif name in ("EXEC", "DISCARD"):
                    in_transaction.discard(client)

    def __enter__(self) -> _Monitor:
        self._thread.start()
        self._ready.wait(5)
        return self

    def __exit__(self, *_: object) -> None:
        # The monitor stops at this marker, sent from another connection after the sends.
        self._marker.echo("bench-stop")
        self._thread.join(5)


def _stats(client: redis.Redis) -> Counter[str]:
    info = client.info("commandstats")
    return Counter({name.removeprefix("cmdstat_").upper(): v["calls"] for name, v in info.items()})


def redis_cost(env: dict[str, str], bases: PhoneBases, seconds: float) -> RedisCost:
    """Exact round trips for 50 sends each way, then commandstats deltas under wrk load."""
    code_store = redis.Redis.from_url(env["REDIS_URL"])
    broker = redis.Redis.from_url(env["CELERY_BROKER_URL"])
    server = stack.smscode_server(env).start()
    try:
        for i in range(20):  # warm every gunicorn worker: scripts loaded, connections open
            _post(server.url, str(bases.next_base() + i))
        probe, n = bases.next_base(), 50
        with _Monitor(env["REDIS_URL"]) as accepted:
            codes = Counter(_post(server.url, str(probe + i)) for i in range(n))
        assert codes == {202: n}, codes
        with _Monitor(env["REDIS_URL"]) as rejected:
            codes = Counter(_post(server.url, str(probe)) for _ in range(n))
        assert codes == {429: n}, codes
        for client in (code_store, broker):
            client.config_resetstat()
        new = load.closed_loop(server.url, "new", bases.next_base(), seconds)
        after_new, broker_new = _stats(code_store), _stats(broker)
        code_store.config_resetstat()
        same = load.closed_loop(server.url, "same", bases.next_base(), seconds)
        after_same = _stats(code_store)
    finally:
        server.stop()
    ok, refused = new.statuses.get("202", 0), same.statuses.get("429", 0)

    def per(counts: Counter[str], sends: int) -> dict[str, float]:
        return {name: round(calls / max(1, sends), 3) for name, calls in counts.most_common()}

    if env["CELERY_BROKER_URL"] == env["REDIS_URL"]:
        broker_new = Counter()  # one server: the enqueue is counted with the code store's
    for counts in (after_new, after_same, broker_new):
        for name in [name for name in counts if name.startswith(("CONFIG", "INFO"))]:
            del counts[name]  # the bench's own
    return RedisCost(
        accepted_commands=per(accepted.top, n),
        rejected_commands=per(rejected.top, n),
        accepted_round_trips=accepted.round_trips / n,
        rejected_round_trips=rejected.round_trips / n,
        accepted_in_scripts=accepted.in_scripts / n,
        rejected_in_scripts=rejected.in_scripts / n,
        accepted_stats=per(after_new, ok),
        rejected_stats=per(after_same, refused),
        broker_per_accepted=per(broker_new, ok),
    )
