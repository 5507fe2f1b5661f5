"""Backpressure and cancellation with the real engine: what a client and an operator observe."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from .conftest import MAX_INFLIGHT, RuntimeServer

pytestmark = pytest.mark.integration
PROMPT = "Once upon a time"


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
