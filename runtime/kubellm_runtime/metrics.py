"""Prometheus metrics of the serving path (vLLM's own metrics share the default registry)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter("llm_requests", "Requests by route and HTTP status", ["route", "status"])
IN_PROGRESS = Gauge("llm_requests_in_progress", "Requests being served", ["route"])
DURATION = Histogram(
    "llm_request_duration_seconds",
    "Request duration (streams: until the last byte)",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
TOKENS = Counter("llm_generation_tokens", "Generated tokens", ["model"])
LATENCY = Histogram(
    "llm_generation_latency_seconds",
    "Time to first token and between tokens",
    ["phase"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
ENGINE_ERRORS = Counter("llm_engine_errors", "Requests the engine failed", ["model"])
REJECTED = Counter("llm_requests_rejected", "Requests refused by backpressure (429)", ["route"])
