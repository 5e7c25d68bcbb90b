"""Shared by the fault tests (no tests here): traffic, per-request counts, a stack per test."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import redis
import requests

from smscode.adapters import keys
from tests.fakes.ronglian import FakeRonglian
from tests.helpers import Worker, fresh_phone

ROOT = Path(__file__).resolve().parents[2]
FINAL = {"sent", "failed", "expired", "skipped"}
# Fast retries and short provider timeouts keep each fault test well under a minute.
FAST = {
    "RONGLIAN_CONNECT_TIMEOUT_SECONDS": "0.5",
    "RONGLIAN_READ_TIMEOUT_SECONDS": "0.5",
    "DELIVERY_RETRY_BASE_SECONDS": "0.1",
    "DELIVERY_RETRY_MAX_SECONDS": "1",
    "WORKER_CONCURRENCY": "8",
    "DELIVERY_RECHECK_SECONDS": "5",  # the outbox queues a lost task again after 5 s
}


@dataclass(frozen=True)
class Sent:
    """One POST /codes: the phone, the HTTP status and the request id when accepted."""

    phone: str
    status: int
    request_id: str | None


@dataclass(frozen=True)
class Counts:
    """Per accepted request: how many SMS the fake accepted for its phone."""

    accepted: int
    refused: int
    sms: int
    lost: int
    duplicates: int

    def __str__(self) -> str:
        return (
            f"accepted={self.accepted} refused={self.refused} sms_at_fake={self.sms} "
            f"lost={self.lost} duplicates={self.duplicates}"
        )


def post(api: str, phone: str) -> Sent:
    """POST /codes for one phone; a transport error counts as status 0."""
    try:
        answer = requests.post(f"{api}/codes", json={"phone": phone}, timeout=10)
    except requests.RequestException:
        return Sent(phone, 0, None)
    body = answer.json()
    return Sent(phone, answer.status_code, body.get("request_id"))


def post_many(api: str, count: int, threads: int = 16) -> list[Sent]:
    """`count` sends to fresh phones, `threads` at a time."""
    phones = {fresh_phone() for _ in range(count * 2)}
    chosen = list(phones)[:count]
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(lambda phone: post(api, phone), chosen))


def states(client: redis.Redis, sends: Iterable[Sent]) -> list[str | None]:
    """The stored delivery state of each accepted send."""
    pipe = client.pipeline()
    for send in sends:
        pipe.hget(keys.request(str(send.request_id)), "state")
    return list(pipe.execute())


def queue_empty(broker: redis.Redis) -> bool:
    """No task waiting in the Celery queue (a worker keeps what it took in its memory:
    kombu's ack emulation is off, adapters/celery_app.py)."""
    return broker.llen("celery") == 0


def settle(
    client: redis.Redis,
    broker: redis.Redis | None,
    sends: list[Sent],
    timeout: float = 40,
    tick: Callable[[], None] | None = None,
) -> None:
    """Wait until every accepted send has a final state and the queue is drained.

    `tick` runs on every poll (a test's supervisor restarting a worker that died).
    """
    accepted = [send for send in sends if send.status == 202]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if tick is not None:
            tick()
        done = all(state in FINAL for state in states(client, accepted))
        if done and (broker is None or queue_empty(broker)):
            time.sleep(0.5)  # a duplicate would be in flight now: let it land before counting
            return
        time.sleep(0.25)


def count(fake: FakeRonglian, sends: list[Sent]) -> Counts:
    """Count, per accepted send, the SMS the fake accepted for its phone."""
    per_phone = Counter(sms.to for sms in fake.accepted)
    accepted = [send.phone for send in sends if send.status == 202]
    return Counts(
        accepted=len(accepted),
        refused=len(sends) - len(accepted),
        sms=sum(per_phone[phone] for phone in accepted),
        lost=sum(1 for phone in accepted if per_phone[phone] == 0),
        duplicates=sum(per_phone[phone] - 1 for phone in accepted if per_phone[phone] > 1),
    )


def report(name: str, counts: Counts, fake: FakeRonglian | None = None) -> None:
    """Print the counts (and what the fake saw) so `pytest -s` or `-rA` shows them."""
    seen = ""
    if fake is not None:
        statuses = Counter(request.status or request.fault.value for request in fake.requests)
        seen = f" provider_calls={sum(statuses.values())} by_answer={dict(statuses)}"
    print(f"\n[{name}] {counts}{seen}", flush=True)


class VariantWorker(Worker):
    """A Celery worker process started from a test module's `__main__` (a provider variant)."""

    def __init__(self, env: Mapping[str, str], module: str) -> None:
        super().__init__(env)
        self.module = module

    def start(self) -> VariantWorker:
        """Start `python -m module` and wait until Celery is ready."""
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module],
                env=self.env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait_for_output("ready.", timeout=30)
        return self


def diagnose(
    client: redis.Redis, broker: redis.Redis | None, sends: list[Sent], fake: FakeRonglian
) -> str:
    """Where the lost sends stand (their stored state) and what the queue still holds."""
    delivered = {sms.to for sms in fake.accepted}
    lost = [send for send in sends if send.status == 202 and send.phone not in delivered]
    where = Counter(str(state) for state in states(client, lost))
    queue = "" if broker is None else f" queue={broker.llen('celery')}"
    return f"lost states={dict(where)}{queue}"


def twice(sends: list[Sent], fake: FakeRonglian, workers: Iterable[Worker]) -> str:
    """For each phone that got more than one SMS: each SMS as the fake saw it, the requests
    the fakes had for it, and every worker log line about it, so a duplicate can be traced."""
    per_phone = defaultdict(list)
    for sms in fake.accepted:
        per_phone[sms.to].append(sms)
    logs = [(n, worker.output().splitlines()) for n, worker in enumerate(workers)]
    calls = list(fake.requests)
    lines = []
    for send in sends:
        got = per_phone[send.phone]
        if send.request_id is None or len(got) < 2:
            continue
        lines.append(f"{send.phone} request {send.request_id}:")
        lines += [f"  sms {sms!r}" for sms in got]
        lines += [f"  call {call!r}" for call in calls if send.phone in repr(call)]
        # the request id, and the message id the fakes saw (Ronglian's reqId)
        ids = {send.request_id, *(str(getattr(sms, "req_id", "")) for sms in got)} - {""}
        lines += [
            f"  worker {n}: {line}"
            for n, out in logs
            for line in out
            if any(i in line for i in ids)
        ]
    return "\n".join(lines)
