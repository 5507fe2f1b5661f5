"""Prometheus metrics of the serving path (vLLM's own metrics share the default registry).

Local mode serves them at ``/metrics``. On Ray Serve that endpoint sits behind the
load-balanced proxy (one random replica answers), so a Serve replica also records every
series through ``ray.util.metrics`` (``export_to_ray``): Ray's metrics agent on each pod then
exports them, prefixed ``ray_`` (``ray_llm_requests_total``), and the chart's PodMonitor
renames them back, so the alerts and the dashboard read one set of names in both modes.
Two things differ there, both Ray's: a counter appears only after its first increase (Ray
refuses increments of zero), and a histogram's ``_sum`` is estimated from bucket midpoints.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from prometheus_client import Counter, Gauge, Histogram


class _Mirror(Protocol):
    """The slice of ``ray.util.metrics`` a series records into."""

    def inc(self, value: float, tags: dict[str, str]) -> None: ...
    def set(self, value: float, tags: dict[str, str]) -> None: ...
    def observe(self, value: float, tags: dict[str, str]) -> None: ...


class Series:
    """One metric: a prometheus_client family, and its Ray twin once exported."""

    def __init__(
        self,
        kind: type[Counter | Gauge | Histogram],
        name: str,
        doc: str,
        labelnames: Sequence[str],
        buckets: Sequence[float] = (),
    ) -> None:
        self.kind, self.name, self.doc = kind, name, doc
        self.labelnames, self.buckets = tuple(labelnames), tuple(buckets)
        self.family: Counter | Gauge | Histogram = (
            Histogram(name, doc, self.labelnames, buckets=self.buckets)
            if kind is Histogram
            else kind(name, doc, self.labelnames)
        )
        self.mirror: Any = None
        self._gauges: dict[tuple[str, ...], float] = {}

    def labels(self, *values: str) -> Child:
        return Child(self, tuple(values), self.family.labels(*values))

    def _tags(self, values: tuple[str, ...]) -> dict[str, str]:
        return dict(zip(self.labelnames, values, strict=True))


class Child:
    """One label set of a series (what ``Series.labels`` returns)."""

    def __init__(self, series: Series, values: tuple[str, ...], local: Any) -> None:
        self.series, self.values, self.local = series, values, local

    def inc(self, amount: float = 1.0) -> None:
        self.local.inc(amount)
        self._gauge_or_counter(amount)

    def dec(self, amount: float = 1.0) -> None:
        self.local.dec(amount)
        self._gauge_or_counter(-amount)

    def observe(self, value: float) -> None:
        self.local.observe(value)
        mirror: _Mirror | None = self.series.mirror
        if mirror is not None:
            mirror.observe(value, self.series._tags(self.values))

    def _gauge_or_counter(self, amount: float) -> None:
        mirror: _Mirror | None = self.series.mirror
        if mirror is None:
            return
        tags = self.series._tags(self.values)
        if self.series.kind is Gauge:
            gauges = self.series._gauges
            gauges[self.values] = gauges.get(self.values, 0.0) + amount
            mirror.set(gauges[self.values], tags)
        elif amount > 0:  # Ray refuses a counter increase of zero
            mirror.inc(amount, tags)


REQUESTS = Series(Counter, "llm_requests", "Requests by route and HTTP status", ["route", "status"])
IN_PROGRESS = Series(Gauge, "llm_requests_in_progress", "Requests being served", ["route"])
DURATION = Series(
    Histogram,
    "llm_request_duration_seconds",
    "Request duration (streams: until the last byte)",
    ["route"],
    (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
TOKENS = Series(Counter, "llm_generation_tokens", "Generated tokens", ["model"])
LATENCY = Series(
    Histogram,
    "llm_generation_latency_seconds",
    "Time to first token and between tokens",
    ["phase"],
    (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
ENGINE_ERRORS = Series(Counter, "llm_engine_errors", "Requests the engine failed", ["model"])
REJECTED = Series(
    Counter, "llm_requests_rejected", "Requests refused by backpressure (429)", ["route"]
)
ALL = (REQUESTS, IN_PROGRESS, DURATION, TOKENS, LATENCY, ENGINE_ERRORS, REJECTED)


def export_to_ray() -> None:
    """Record every series through Ray's metrics too (a Ray Serve replica calls this once)."""
    from ray.util import metrics as ray_metrics  # noqa: PLC0415 - only Serve replicas export

    for series in ALL:
        if series.mirror is not None:
            continue
        keys = series.labelnames
        if series.kind is Histogram:
            series.mirror = ray_metrics.Histogram(
                series.name, series.doc, boundaries=list(series.buckets), tag_keys=keys
            )
        elif series.kind is Gauge:
            series.mirror = ray_metrics.Gauge(series.name, series.doc, tag_keys=keys)
        else:
            series.mirror = ray_metrics.Counter(series.name, series.doc, tag_keys=keys)
