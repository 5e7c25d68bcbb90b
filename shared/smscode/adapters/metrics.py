"""Metrics in one place: Prometheus counters and a latency histogram, exported or bridged to EMF."""

from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client import Counter, Histogram

    from smscode.domain.outcomes import Result, Sms
    from smscode.service_layer.ports import Lease, Provider


@dataclass(frozen=True)
class _Instruments:
    sends: Counter
    rejections: Counter
    verifications: Counter
    deliveries: Counter
    permanent_failures: Counter
    provider_latency: Histogram
    circuit_changes: Counter
    resends_after_lookup: Counter
    pumping_blocks: Counter

    def counters(self) -> dict[str, Counter]:
        """The counters by their EMF name."""
        return {
            "sends_accepted": self.sends,
            "send_rejections": self.rejections,
            "verifications": self.verifications,
            "deliveries": self.deliveries,
            "provider_permanent_failures": self.permanent_failures,
            "circuit_changes": self.circuit_changes,
            "resends_after_lookup": self.resends_after_lookup,
            "pumping_blocks": self.pumping_blocks,
        }


_MADE: list[_Instruments] = []
_MAKING = threading.Lock()


def _instruments() -> _Instruments:
    """This process's counters, made on first use: prometheus_client (with its HTTP server
    and exposition modules) stays off the import path of the Lambda handlers.

    Made under a lock: gunicorn threads count their first request at once, and a counter
    registered twice is an error.
    """
    if _MADE:
        return _MADE[0]
    with _MAKING:
        if not _MADE:
            _MADE.append(_make())
    return _MADE[0]


def _make() -> _Instruments:
    from prometheus_client import Counter, Histogram

    return _Instruments(
        sends=Counter("smscode_sends_accepted", "Sends accepted (202) and queued for delivery."),
        rejections=Counter(
            "smscode_send_rejections", "Sends refused by a cap, by reason.", ["reason"]
        ),
        verifications=Counter(
            "smscode_verifications", "Verification attempts, by outcome.", ["outcome"]
        ),
        deliveries=Counter("smscode_deliveries", "Delivery attempts, by outcome.", ["outcome"]),
        permanent_failures=Counter(
            "smscode_provider_permanent_failures",
            "Sends a provider refused for good (account, template, number), by its status code.",
            ["code"],
        ),
        provider_latency=Histogram(
            "smscode_provider_latency_seconds",
            "Time of one call to the SMS provider, answered or not.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0),
        ),
        circuit_changes=Counter(
            "smscode_circuit_changes",
            "Changes of a provider's circuit breaker, by provider and the state it changed to.",
            ["provider", "state"],
        ),
        resends_after_lookup=Counter(
            "smscode_resends_after_lookup",
            "Resends after an ambiguous answer whose provider's records showed no earlier SMS "
            "(the one place a second SMS could still happen, docs/concepts/failover.md), "
            "by provider.",
            ["provider"],
        ),
        pumping_blocks=Counter(
            "smscode_pumping_blocks",
            "Number blocks blocked for SMS pumping: auto (low conversion, for everyone), "
            "network (one client network's own sends, refused to it alone) or manual.",
            ["how"],
        ),
    )


# Raw latencies since the last EMF flush: CloudWatch computes percentiles from values, not
# buckets. Bounded so a process that never flushes (self-hosted) cannot grow without end.
_LATENCIES: deque[float] = deque(maxlen=1000)
_FLUSHED: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}


class PrometheusMetrics:
    """The `Metrics` port on this process's Prometheus counters."""

    def send_accepted(self) -> None:
        """Count one accepted send."""
        _instruments().sends.inc()

    def send_rejected(self, reason: str) -> None:
        """Count one send refused by the cap named `reason`."""
        _instruments().rejections.labels(reason=reason).inc()

    def verified(self, outcome: str) -> None:
        """Count one verification attempt by its store outcome."""
        _instruments().verifications.labels(outcome=outcome).inc()

    def delivered(self, outcome: str) -> None:
        """Count one delivery attempt by its outcome."""
        _instruments().deliveries.labels(outcome=outcome).inc()

    def permanent_failure(self, code: str) -> None:
        """Count one send a provider refused for good, by the provider's status code."""
        _instruments().permanent_failures.labels(code=code or "unknown").inc()

    def circuit_changed(self, provider: str, state: str) -> None:
        """Count one change of a provider's circuit."""
        _instruments().circuit_changes.labels(provider=provider, state=state).inc()

    def resent_after_lookup(self, provider: str) -> None:
        """Count one resend after an ambiguous answer and an empty lookup."""
        _instruments().resends_after_lookup.labels(provider=provider).inc()

    def pumping_blocked(self, how: str) -> None:
        """Count one number block blocked for pumping, `auto` or `manual`."""
        _instruments().pumping_blocks.labels(how=how).inc()


class TimedProvider:
    """A provider wrapper that records the latency of every call."""

    def __init__(self, provider: Provider) -> None:
        self._provider = provider

    def send(self, sms: Sms, lease: Lease) -> Result:
        """Send through the wrapped provider, timing the call."""
        start = time.perf_counter()
        try:
            return self._provider.send(sms, lease)
        finally:
            elapsed = time.perf_counter() - start
            _instruments().provider_latency.observe(elapsed)
            _LATENCIES.append(elapsed)


def render() -> tuple[bytes, str]:
    """The Prometheus text of this process, or of every gunicorn worker in multiprocess mode."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

    _instruments()  # registered even before the first count, so /metrics lists them at 0
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def serve_port(port: int | None, host: str) -> None:
    """Serve /metrics on `host:port` from a daemon thread (the worker's exporter); None: off."""
    if port:
        from prometheus_client import start_http_server

        _instruments()
        start_http_server(port, addr=host)


def flush_emf(namespace: str = "smscode", service: str = "smscode") -> None:
    """Print what changed since the last flush as CloudWatch EMF lines (Powertools); for Lambda.

    Counters are cumulative per process and a Lambda container serves many invocations, so
    each flush emits the increase since the previous one; call it at the end of a handler.
    """
    from aws_lambda_powertools.metrics import MetricUnit
    from aws_lambda_powertools.metrics.base import SingleMetric

    def emit(name: str, unit: MetricUnit, values: list[float], labels: dict[str, str]) -> None:
        metric = SingleMetric(namespace=namespace)
        for value in values:
            metric.add_metric(name=name, unit=unit, value=value)
        for key, label in {"service": service, **labels}.items():
            metric.add_dimension(name=key, value=label)
        print(json.dumps(metric.serialize_metric_set(), separators=(",", ":")), flush=True)

    for short, counter in _instruments().counters().items():
        for family in counter.collect():
            for sample in family.samples:
                if not sample.name.endswith("_total"):
                    continue  # the _created timestamps
                key = (short, tuple(sorted(sample.labels.items())))
                delta = sample.value - _FLUSHED.get(key, 0.0)
                _FLUSHED[key] = sample.value
                if delta > 0:
                    emit(short, MetricUnit.Count, [delta], sample.labels)
    latencies = [_LATENCIES.popleft() for _ in range(len(_LATENCIES))]
    if latencies:
        emit("provider_latency", MetricUnit.Seconds, latencies, {})
