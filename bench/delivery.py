"""(c) Delivery throughput at the fake's latency: `smscode worker` (Celery), the SQS handler."""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import redis

from bench import stack
from bench.phones import PhoneBases
from smscode.domain.messages import DeliveryMessage


@dataclass
class DeliveryFigure:
    """One delivery setup: its name and the steady SMS/s the fake saw."""

    name: str
    sms_per_second: float
    delivered: int
    wanted: int
    from_start: float = 0.0  # SMS/s from the workers' launch to the last SMS
    cores: float = 0.0  # the workers' CPU seconds per second over that span
    processes: int = 1
    cpu_us_per_sms: float = 0.0  # the SQS handler's CPU (its processes, not the fake's) per SMS


class _Collect:
    """A publisher that keeps the messages, to feed them to the SQS handler as batches."""

    def __init__(self) -> None:
        self.messages: list[DeliveryMessage] = []

    def publish(self, message: DeliveryMessage) -> None:
        self.messages.append(message)


def _issue(env: dict[str, str], n: int, base: int, publisher: Any | None) -> None:
    """Issue n codes through the real use case (and store), publishing as configured."""
    os.environ.update(env)
    from smscode import bootstrap
    from smscode.adapters.metrics import PrometheusMetrics
    from smscode.service_layer.send import Sender
    from smscode.settings import get_settings

    bootstrap.reset()
    if publisher is None:
        service = bootstrap.sender()
    else:
        settings = get_settings()
        secret = settings.code_secret.get_secret_value().encode()
        service = Sender(
            bootstrap.policy(settings), bootstrap.store(), publisher, bootstrap.sealer(), secret,
            PrometheusMetrics(),
        )  # fmt: skip
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: service.issue(str(base + i), "10.0.0.1"), range(n)))


def _steady_rate(fake: stack.FakeProvider) -> tuple[float, int]:
    """SMS/s between the 10th and 90th percentile arrivals: no start-up, no tail."""
    times = sorted(at for _, at in fake.received())
    if len(times) < 20:
        return 0.0, len(times)
    low, high = int(len(times) * 0.1), int(len(times) * 0.9)
    return (high - low) / (times[high] - times[low]), len(times)


def _wait_for(fake: stack.FakeProvider, n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while fake.count() < n and time.monotonic() < deadline:
        time.sleep(0.2)


def empty_stores(env: dict[str, str], fake: stack.FakeProvider) -> None:
    """Empty the code store, the broker and the fake: each measurement starts from nothing."""
    for url in (env["REDIS_URL"], env["CELERY_BROKER_URL"]):
        redis.Redis.from_url(url).flushdb()
    fake.reset()


def _from_start(fake: stack.FakeProvider, start: float) -> float:
    """SMS/s from `start` (the worker's launch) to the last SMS the fake accepted."""
    times = sorted(at for _, at in fake.received())
    return len(times) / (times[-1] - start) if times and times[-1] > start else 0.0


def celery(
    env: dict[str, str], fake: stack.FakeProvider, bases: PhoneBases,
    n: int, processes: int, concurrency: int,
) -> DeliveryFigure:  # fmt: skip
    """n queued sends drained by `processes` x `smscode worker` (`concurrency` threads each).

    The rate is counted from the moment the workers are launched (their start-up included)
    to the last SMS; `cores` is the workers' CPU time over that span.
    """
    empty_stores(env, fake)
    _issue(env, n, bases.next_base(), None)
    worker_env = {**env, "WORKER_CONCURRENCY": str(concurrency)}
    start = time.time()
    workers = [stack.celery_worker(worker_env).start() for _ in range(processes)]
    cpu = 0.0
    try:
        _wait_for(fake, n, timeout=20 + n / 100)
        for worker in workers:
            cpu += stack.cpu_seconds(worker)
    finally:
        for worker in workers:
            worker.stop()
    rate, delivered = _steady_rate(fake)
    from_start = _from_start(fake, start)
    span = max(at for _, at in fake.received()) - start if delivered else 0.0
    name = f"`smscode worker` x{processes}, WORKER_CONCURRENCY={concurrency}"
    return DeliveryFigure(
        name, rate, delivered, n, from_start=from_start, cores=cpu / span if span else 0.0,
        processes=processes,
    )  # fmt: skip


def _sqs_process(
    env: dict[str, str], payloads: list[str], invocations: int, report: Connection
) -> None:
    os.environ.update(env)
    # Log lines are still formatted (that CPU is part of the cost), just not shown.
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    from smscode.entrypoints.sqs import handle_sqs_batch

    events = [
        {"Records": [{"messageId": f"m{i + j}", "body": body} for j, body in enumerate(chunk)]}
        for i in range(0, len(payloads), 10)
        for chunk in [payloads[i : i + 10]]
    ]
    handle_sqs_batch({"Records": []})  # nothing to do, but the imports are paid before timing
    start = time.process_time()
    with ThreadPoolExecutor(invocations) as pool:
        list(pool.map(handle_sqs_batch, events))
    report.send(time.process_time() - start)  # this process's CPU seconds for its batches


def sqs(
    env: dict[str, str], fake: stack.FakeProvider, bases: PhoneBases,
    n: int, processes: int, invocations: int,
) -> DeliveryFigure:  # fmt: skip
    """The Lambda SQS handler (`smscode.entrypoints.sqs.handle_sqs_batch`) on batches of 10 records.

    Each process stands for the CPU of one core; `invocations` concurrent calls per process
    stand for that many warm Lambda containers, each busy with one batch.
    """
    empty_stores(env, fake)
    collected = _Collect()
    _issue(env, n, bases.next_base(), collected)
    payloads = [message.to_json() for message in collected.messages]
    # Each call of the handler runs up to ten provider calls at once: size the HTTP pool to it.
    sqs_env = {**env, "WORKER_CONCURRENCY": str(10 * invocations)}
    context = multiprocessing.get_context("spawn")
    shares = [payloads[i::processes] for i in range(processes)]
    pipes = [context.Pipe(duplex=False) for _ in shares]
    pool = [
        context.Process(target=_sqs_process, args=(sqs_env, share, invocations, sender))
        for share, (_, sender) in zip(shares, pipes, strict=True)
    ]
    for process in pool:
        process.start()
    cpu = 0.0
    for process, (receiver, _) in zip(pool, pipes, strict=True):
        if receiver.poll(60 + n / 50):
            cpu += receiver.recv()
        process.join(timeout=10)
    rate, delivered = _steady_rate(fake)
    name = f"SQS handler, batches of 10, {processes} process(es) x {invocations} invocations"
    return DeliveryFigure(
        name, rate, delivered, n, processes=processes,
        cpu_us_per_sms=cpu / delivered * 1e6 if delivered else 0.0,
    )  # fmt: skip
