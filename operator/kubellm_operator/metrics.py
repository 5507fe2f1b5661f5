"""Operator metrics (Prometheus): reconciles, errors, latency, API writes, phases, time to Ready."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Gauge, Histogram, start_http_server

RECONCILES = Counter(
    "kubellm_reconcile_total", "Reconciles by kind and trigger", ["kind", "trigger"]
)
RECONCILE_ERRORS = Counter(
    "kubellm_reconcile_errors_total", "Failed reconciles by kind and error", ["kind", "error"]
)
RECONCILE_SECONDS = Histogram(
    "kubellm_reconcile_duration_seconds",
    "Reconcile latency",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
API_WRITES = Counter("kubellm_api_writes_total", "Writes to the Kubernetes API", ["kind", "what"])
OBJECTS = Gauge("kubellm_objects", "Objects by kind and phase", ["kind", "phase"])
QUEUE_WAIT = Histogram(
    "kubellm_queue_wait_seconds",
    "From a change to the start of its reconcile (the work queue's wait)",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
API_CALL_SECONDS = Histogram(
    "kubellm_api_call_seconds",
    "Kubernetes and Ray dashboard calls of the operator, by call",
    ["call"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
TIME_TO_READY = Histogram(
    "kubellm_time_to_ready_seconds",
    "From creation to the first Ready",
    ["kind"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600),
)


@contextmanager
def reconciling(kind: str, trigger: str) -> Iterator[None]:
    RECONCILES.labels(kind, trigger).inc()
    start = time.perf_counter()
    try:
        yield
    except Exception as exc:
        RECONCILE_ERRORS.labels(kind, type(exc).__name__).inc()
        raise
    finally:
        RECONCILE_SECONDS.labels(kind).observe(time.perf_counter() - start)


class PhaseTracker:
    """Keeps the objects-by-phase gauge exact: each object counted once, in its last phase."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.phases: dict[str, str] = {}

    def set(self, key: str, phase: str | None) -> None:
        old = self.phases.pop(key, None)
        if old is not None:
            OBJECTS.labels(self.kind, old).dec()
        if phase is not None:
            self.phases[key] = phase
            OBJECTS.labels(self.kind, phase).inc()


def serve(host: str, port: int) -> None:
    start_http_server(port, addr=host)
