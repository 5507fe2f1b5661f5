"""Operator metrics (Prometheus): reconciles, errors, latency, API writes, phases, time to Ready,
and per object: a deployment's readiness and adapters, a fine-tune's phase and progress."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, start_http_server

RECONCILES = Counter("kubellm_reconcile_total", "Reconciles by kind", ["kind"])
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
def reconciling(kind: str) -> Iterator[None]:
    RECONCILES.labels(kind).inc()
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


DEPLOYMENT_READY = Gauge(
    "kubellm_llmdeployment_ready",
    "1 while an LLMDeployment serves its current spec (its Ready condition), else 0",
    ["namespace", "name"],
)
DEPLOYMENT_ADAPTERS = Gauge(
    "kubellm_llmdeployment_adapters",
    "An LLMDeployment's requested adapters by state (Loaded, Pending, Failed)",
    ["namespace", "name", "state"],
)
JOB_PHASE = Gauge(
    "kubellm_finetunejob_phase",
    "1 for a FineTuneJob's current phase",
    ["namespace", "name", "phase"],
)
JOB_PROGRESS = Gauge(
    "kubellm_finetunejob_progress_ratio",
    "Steps done over total steps, as the trainer reported them",
    ["namespace", "name"],
)
JOB_STEP = Gauge("kubellm_finetunejob_step", "The trainer's last step", ["namespace", "name"])
JOB_LOSS = Gauge("kubellm_finetunejob_loss", "The latest training loss", ["namespace", "name"])

Series = tuple[Gauge, tuple[str, ...], float]


class ObjectSeries:
    """Per-object series of one kind: replaced whole on each reconcile and removed with the
    object, so the label sets stay as many as the objects that exist."""

    def __init__(self) -> None:
        self.held: dict[str, set[tuple[Gauge, tuple[str, ...]]]] = {}

    def set(self, key: str, series: list[Series]) -> None:
        now = {(gauge, labels) for gauge, labels, _ in series}
        for gauge, labels in self.held.pop(key, set()) - now:
            gauge.remove(*labels)
        for gauge, labels, value in series:
            gauge.labels(*labels).set(value)
        if now:
            self.held[key] = now


def deployment_series(namespace: str, name: str, ready: bool, adapters: list[str]) -> list[Series]:
    """Ready, and adapter counts by state (``adapters``: each adapter's state)."""
    series: list[Series] = [(DEPLOYMENT_READY, (namespace, name), float(ready))]
    for state in sorted(set(adapters)):
        series.append((DEPLOYMENT_ADAPTERS, (namespace, name, state), adapters.count(state)))
    return series


def job_series(
    namespace: str, name: str, phase: str | None, progress: dict[str, Any]
) -> list[Series]:
    """Phase, and the trainer's step, progress and loss when it has reported them."""
    series: list[Series] = []
    if phase is not None:
        series.append((JOB_PHASE, (namespace, name, phase), 1.0))
    step, total = progress.get("step"), progress.get("totalSteps")
    if isinstance(step, int):
        series.append((JOB_STEP, (namespace, name), float(step)))
        if isinstance(total, int) and total > 0:
            series.append((JOB_PROGRESS, (namespace, name), step / total))
    if isinstance(loss := progress.get("loss"), int | float):
        series.append((JOB_LOSS, (namespace, name), float(loss)))
    return series


def start_at_zero(kinds: tuple[str, ...], reasons: tuple[str, ...]) -> None:
    """Reconcile errors of every kind and reason exist from the start, at zero: a rate over
    them (the KubellmReconcileErrors alert, the dashboard) reads 0, not "no data"."""
    for kind in kinds:
        for reason in reasons:
            RECONCILE_ERRORS.labels(kind, reason)


def serve(host: str, port: int) -> None:
    start_http_server(port, addr=host)
