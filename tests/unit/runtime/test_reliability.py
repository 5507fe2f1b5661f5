"""Backpressure, auth, metrics, and cancellation of abandoned generations (fake engine)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from kubellm_runtime.contract import LimitsArgs
from kubellm_runtime.engine.fake import FakeEngine
from kubellm_runtime.ingress import EngineSlot, create_app
from kubellm_runtime.openai import answers
from kubellm_runtime.openai.protocol import ChatCompletionRequest
from kubellm_runtime.openai.service import OpenAIService
from kubellm_runtime.settings import RuntimeSettings

CHAT = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}


def client_for(engine: FakeEngine, **settings: Any) -> httpx.AsyncClient:
    app = create_app(EngineSlot(engine=engine), settings=RuntimeSettings(**settings))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r")


async def until_in_progress(client: httpx.AsyncClient, count: int) -> None:
    """Poll the runtime's own gauge (with a deadline) until ``count`` chats are being served."""
    wanted = f'llm_requests_in_progress{{route="/v1/chat/completions"}} {float(count)}'
    async with asyncio.timeout(10):
        # Polls an HTTP gauge: there is no event to wait on.
        while wanted not in (await client.get("/metrics")).text:  # noqa: ASYNC110
            await asyncio.sleep(0.005)


async def test_beyond_the_admission_limit_requests_get_429_with_retry_after() -> None:
    engine = FakeEngine(token_delay=0.05)
    async with client_for(engine, max_inflight=2, retry_after_s=3) as client:
        slow = [
            asyncio.create_task(client.post("/v1/chat/completions", json=CHAT)) for _ in range(2)
        ]
        await until_in_progress(client, 2)  # both admitted (each takes 250 ms)
        rejected = await client.post("/v1/chat/completions", json=CHAT)
        assert rejected.status_code == 429
        assert rejected.headers["retry-after"] == "3"
        assert rejected.json()["error"]["code"] == "overloaded"
        assert [r.status_code for r in await asyncio.gather(*slow)] == [200, 200]
        # Capacity comes back once they finish.
        assert (await client.post("/v1/chat/completions", json=CHAT)).status_code == 200


async def test_the_contracts_limits_size_admission_on_ray_serve() -> None:
    """On Ray Serve the operator's limits (in step with Serve's own) replace the defaults."""
    settings = RuntimeSettings(max_inflight=256).with_limits(
        LimitsArgs(max_inflight=1, retry_after_s=4)
    )
    engine = FakeEngine(token_delay=0.05)
    app = create_app(EngineSlot(engine=engine), settings=settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://r") as client:
        first = asyncio.create_task(client.post("/v1/chat/completions", json=CHAT))
        await until_in_progress(client, 1)
        rejected = await client.post("/v1/chat/completions", json=CHAT)
        assert (rejected.status_code, rejected.headers["retry-after"]) == (429, "4")
        assert (await first).status_code == 200
    assert RuntimeSettings(max_inflight=7).with_limits(None).max_inflight == 7  # local mode


def test_the_contracts_request_timeout_bounds_every_request_on_ray_serve() -> None:
    limits = LimitsArgs(max_inflight=4, request_timeout_s=30)
    assert RuntimeSettings(request_timeout_s=600).with_limits(limits).request_timeout_s == 30
    unset = LimitsArgs(max_inflight=4)
    assert RuntimeSettings(request_timeout_s=600).with_limits(unset).request_timeout_s == 600


async def test_a_configured_api_key_is_required_on_the_api_but_not_on_health() -> None:
    async with client_for(FakeEngine(), api_key=SecretStr("s3cret")) as client:
        missing = await client.post("/v1/chat/completions", json=CHAT)
        assert missing.status_code == 401
        assert missing.json()["error"]["code"] == "invalid_api_key"
        wrong = await client.get("/v1/models", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        ok = await client.get("/v1/models", headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        assert (await client.get("/health")).status_code == 200


async def test_metrics_expose_the_documented_names_with_values() -> None:
    async with client_for(FakeEngine()) as client:
        await client.post("/v1/chat/completions", json=CHAT)
        # A stream too: the first-token latency is observed for streams.
        await client.post("/v1/chat/completions", json={**CHAT, "stream": True})
        text = (await client.get("/metrics")).text
    values: dict[str, float] = {}  # summed over label sets
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            values[s.name] = values.get(s.name, 0.0) + s.value
    assert values["llm_requests_total"] >= 2
    assert values["llm_request_duration_seconds_count"] >= 2
    assert values["llm_generation_tokens_total"] >= 2 * CHAT["max_tokens"]
    first_tokens = [
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "llm_generation_latency_seconds_count"
        and s.labels.get("phase") == "first_token"
    ]
    assert first_tokens
    assert first_tokens[0] >= 1
    assert "llm_requests_in_progress" in values
    assert "llm_engine_errors_total" in values or "# TYPE llm_engine_errors" in text


async def test_a_stream_abandoned_by_its_client_is_aborted_in_the_engine() -> None:
    engine = FakeEngine()
    service = OpenAIService(engine)
    prepared = await service.prepare_chat(
        ChatCompletionRequest.model_validate({**CHAT, "max_tokens": 50})
    )
    stream = answers.chat_stream(service, prepared)
    await anext(stream)  # the role frame
    await anext(stream)  # one token
    await stream.aclose()  # what Starlette does when the client disconnects
    assert prepared.request_id in engine.aborted


async def test_a_finished_stream_is_not_aborted() -> None:
    engine = FakeEngine()
    service = OpenAIService(engine)
    prepared = await service.prepare_chat(ChatCompletionRequest.model_validate(CHAT))
    frames = [frame async for frame in answers.chat_stream(service, prepared)]
    assert frames[-1] == "data: [DONE]\n\n"
    assert engine.aborted == set()


@pytest.mark.parametrize("limit", [1])
async def test_a_slow_generation_times_out_with_504(limit: int) -> None:
    engine = FakeEngine(token_delay=0.2)
    async with client_for(engine, request_timeout_s=0.1, max_inflight=limit) as client:
        reply = await client.post("/v1/chat/completions", json=CHAT)
    assert reply.status_code == 504
    assert engine.aborted  # the engine stopped working on it
