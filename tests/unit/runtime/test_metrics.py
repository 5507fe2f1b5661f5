"""The request metrics hold what requests did, with bounded labels (fake engine)."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
from prometheus_client.parser import text_string_to_metric_families

from kubellm_runtime import metrics
from kubellm_runtime.engine.fake import FakeEngine

from .test_reliability import CHAT, client_for, until_in_progress


async def sample(client: httpx.AsyncClient, name: str, **labels: str) -> float:
    """The value of one sample on /metrics (0 when absent)."""
    text = (await client.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


async def test_a_request_is_counted_timed_and_released_under_its_route() -> None:
    route = "/v1/chat/completions"
    async with client_for(FakeEngine()) as client:
        count = await sample(client, "llm_requests_total", route=route, status="200")
        timed = await sample(client, "llm_request_duration_seconds_count", route=route)
        assert (await client.post(route, json=CHAT)).status_code == 200
        assert await sample(client, "llm_requests_total", route=route, status="200") == count + 1
        assert await sample(client, "llm_request_duration_seconds_count", route=route) == timed + 1
        assert await sample(client, "llm_requests_in_progress", route=route) == 0


async def test_junk_paths_share_one_label() -> None:
    async with client_for(FakeEngine()) as client:
        before = await sample(client, "llm_requests_total", route="unmatched", status="404")
        for i in range(50):
            assert (await client.get(f"/junk-{i}/x")).status_code == 404
        assert await sample(client, "llm_requests_total", route="unmatched", status="404") == (
            before + 50
        )
        assert "junk-" not in (await client.get("/metrics")).text


async def test_a_cancelled_request_leaves_the_gauge_and_is_counted_as_client_closed() -> None:
    route = "/v1/chat/completions"
    async with client_for(FakeEngine(token_delay=10)) as client:
        closed = await sample(client, "llm_requests_total", route=route, status="499")
        call = asyncio.create_task(client.post(route, json=CHAT))
        await until_in_progress(client, 1)
        call.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await call
        assert await sample(client, "llm_requests_in_progress", route=route) == 0
        assert await sample(client, "llm_requests_total", route=route, status="499") == closed + 1


async def test_a_plain_request_id_is_echoed_and_an_oversized_one_replaced() -> None:
    async with client_for(FakeEngine()) as client:
        plain = await client.get("/v1/models", headers={"X-Request-ID": "abc-123"})
        assert plain.headers["x-request-id"] == "abc-123"
        huge = "a" * 10_000
        replaced = await client.get("/v1/models", headers={"X-Request-ID": huge})
        assert replaced.headers["x-request-id"] != huge
        assert len(replaced.headers["x-request-id"]) == 32  # a generated one
        odd = await client.get("/v1/models", headers={"X-Request-ID": "a b\tc"})
        assert odd.headers["x-request-id"] != "a b\tc"


class RecordingMirror:
    """Stands in for a ray.util.metrics series: what a Serve replica would hand Ray."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float, dict[str, str]]] = []

    def inc(self, value: float, tags: dict[str, str]) -> None:
        self.calls.append(("inc", value, tags))

    def set(self, value: float, tags: dict[str, str]) -> None:
        self.calls.append(("set", value, tags))

    def observe(self, value: float, tags: dict[str, str]) -> None:
        self.calls.append(("observe", value, tags))


async def test_a_serve_replica_hands_every_series_to_ray_with_the_same_labels() -> None:
    mirrors = {series.name: RecordingMirror() for series in metrics.ALL}
    for series in metrics.ALL:
        series.mirror = mirrors[series.name]
    route = "/v1/chat/completions"
    try:
        async with client_for(FakeEngine()) as client:
            assert (await client.post(route, json={**CHAT, "stream": True})).status_code == 200
    finally:
        for series in metrics.ALL:
            series.mirror = None
    requests = mirrors["llm_requests"].calls
    assert ("inc", 1.0, {"route": route, "status": "200"}) in requests
    # The in-flight gauge goes up and back to zero (Ray's gauge is set, not incremented).
    in_flight = [c for c in mirrors["llm_requests_in_progress"].calls if c[2] == {"route": route}]
    assert [value for _, value, _ in in_flight] == [1.0, 0.0]
    assert [c[0] for c in mirrors["llm_request_duration_seconds"].calls] == ["observe"]
    phases = {c[2]["phase"] for c in mirrors["llm_generation_latency_seconds"].calls}
    assert phases == {"first_token", "inter_token"}
    ((call, produced, _),) = mirrors["llm_generation_tokens"].calls
    assert call == "inc"
    assert produced > 0
    # Ray refuses increments of zero: series created at zero are not handed over.
    assert mirrors["llm_engine_errors"].calls == []
    assert mirrors["llm_requests_rejected"].calls == []
