"""Backpressure and cancellation with the real engine: what a client and an operator observe."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from kubellm_dev.waiting import wait_for

from .conftest import MAX_INFLIGHT, RuntimeServer, metric

pytestmark = pytest.mark.integration
PROMPT = "Once upon a time"
LONG = 200  # max_model_len is 256


def completion(max_tokens: int, stream: bool = False) -> dict[str, object]:
    return {
        "model": "tiny",
        "prompt": PROMPT,
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": stream,
    }


async def test_overload_is_answered_with_429_and_retry_after_never_5xx(
    vllm_runtime: RuntimeServer,
) -> None:
    async with httpx.AsyncClient(
        base_url=vllm_runtime.base_url, timeout=300, trust_env=False
    ) as client:
        replies = await asyncio.gather(
            *(client.post("/v1/completions", json=completion(48)) for _ in range(4 * MAX_INFLIGHT))
        )
    statuses = [r.status_code for r in replies]
    assert set(statuses) <= {200, 429}
    assert statuses.count(429) > 0
    assert statuses.count(200) >= MAX_INFLIGHT
    rejected = next(r for r in replies if r.status_code == 429)
    assert rejected.headers["retry-after"] == "1"
    assert rejected.json()["error"]["type"] == "rate_limit_exceeded"


async def test_a_client_that_disconnects_mid_stream_stops_the_generation(
    vllm_runtime: RuntimeServer,
) -> None:
    base = vllm_runtime.base_url
    async with httpx.AsyncClient(base_url=base, timeout=300, trust_env=False) as client:
        # The control: this prompt, greedy, really runs to LONG tokens when nobody leaves.
        full = (await client.post("/v1/completions", json=completion(LONG))).json()
        assert full["choices"][0]["finish_reason"] == "length"
        assert full["usage"]["completion_tokens"] == LONG

        tokens_before = metric(base, "vllm:generation_tokens_total")
        async with client.stream("POST", "/v1/completions", json=completion(LONG, True)) as r:
            seen = 0
            async for line in r.aiter_lines():
                if line.startswith("data: {"):
                    assert json.loads(line[6:])["choices"][0].get("finish_reason") is None
                    seen += 1
                    if seen == 3:
                        break  # leaving the block closes the connection
    wait_for(
        lambda: (
            metric(base, "vllm:num_requests_running"),
            metric(base, "llm_requests_in_progress"),
        ),
        lambda seen: seen[0] == 0 and seen[1] <= 1,  # <= 1: the /metrics request itself
        timeout=60,
        what="the engine to drop the abandoned request",
    )
    assert metric(base, "vllm:generation_tokens_total") - tokens_before < LONG
