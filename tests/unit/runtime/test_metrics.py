"""The request metrics hold what requests did, with bounded labels (fake engine)."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
from prometheus_client.parser import text_string_to_metric_families

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
