"""Load generation over HTTP (aiohttp): latency, streaming timings, throughput, connection floods.

Every function is bounded: a fixed number of requests and a per-request deadline.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp


@dataclass
class Result:
    status: int  # 0: the connection failed or the deadline passed
    seconds: float
    ttft: float | None = None
    gaps: list[float] = field(default_factory=list)  # seconds between streamed text chunks
    tokens: int = 0

    @property
    def per_token(self) -> float | None:
        """Time per output token after the first (TPOT), from the engine's token count."""
        if self.ttft is None or self.tokens < 2:
            return None
        return (self.seconds - self.ttft) / (self.tokens - 1)


def body(model: str, max_tokens: int, stream: bool, prompt: str) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "model": model,
        "prompt": prompt,
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": stream,
    }
    if stream:  # the token count arrives in the last chunk
        payload["stream_options"] = {"include_usage": True}
    return payload


async def request(
    session: aiohttp.ClientSession, url: str, payload: dict[str, Any], deadline: float = 300
) -> Result:
    start = time.perf_counter()
    try:
        async with asyncio.timeout(deadline), session.post(url, json=payload) as reply:
            if not payload["stream"] or reply.status != 200:
                data = await reply.read()
                tokens = 0
                if reply.status == 200:
                    tokens = int(json.loads(data)["usage"]["completion_tokens"])
                return Result(reply.status, time.perf_counter() - start, tokens=tokens)
            return await _stream(reply, start)
    except (TimeoutError, aiohttp.ClientError):
        return Result(0, time.perf_counter() - start)


async def _stream(reply: aiohttp.ClientResponse, start: float) -> Result:
    """TTFT: the first chunk with text; tokens: the usage the server reports at the end."""
    result = Result(reply.status, 0.0)
    last = None
    async for raw in reply.content:
        line = raw.strip()
        if not line.startswith(b"data: {"):
            continue
        event = json.loads(line[6:])
        if event.get("usage"):
            result.tokens = int(event["usage"]["completion_tokens"])
        choices = event.get("choices") or [{}]
        if not choices[0].get("text"):
            continue
        now = time.perf_counter()
        if last is None:
            result.ttft = now - start
        else:
            result.gaps.append(now - last)
        last = now
    result.seconds = time.perf_counter() - start
    return result


def session(connections: int = 0) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    return aiohttp.ClientSession(connector=connector, trust_env=False)


async def sequential(url: str, payload: dict[str, Any], count: int) -> list[Result]:
    async with session(1) as s:
        await request(s, url, payload)  # warm the connection and the server
        return [await request(s, url, payload) for _ in range(count)]


async def concurrent(url: str, payload: dict[str, Any], workers: int, total: int) -> dict[str, Any]:
    """``workers`` clients issue ``total`` requests; tokens/s and requests/s over the run."""
    queue = list(range(total))
    results: list[Result] = []

    async def worker(s: aiohttp.ClientSession) -> None:
        while queue:
            queue.pop()
            results.append(await request(s, url, payload))

    async with session(workers) as s:
        started = time.perf_counter()
        await asyncio.gather(*(worker(s) for _ in range(workers)))
        elapsed = time.perf_counter() - started
    ok = [r for r in results if r.status == 200]
    return {
        "concurrency": workers,
        "requests": total,
        "ok": len(ok),
        "seconds": round(elapsed, 2),
        "requests_per_s": round(len(ok) / elapsed, 1),
        "tokens_per_s": round(sum(r.tokens for r in ok) / elapsed, 1),
    }


async def flood(
    url: str, payload: dict[str, Any], connections: int, deadline: float
) -> dict[str, Any]:
    """``connections`` requests at once, each on its own connection; status counts."""
    async with session(connections) as s:
        started = time.perf_counter()
        results = await asyncio.gather(
            *(request(s, url, payload, deadline) for _ in range(connections))
        )
        elapsed = time.perf_counter() - started
    counts: dict[str, int] = {}
    for r in results:
        key = "failed/timeout" if r.status == 0 else str(r.status)
        counts[key] = counts.get(key, 0) + 1
    return {
        "connections": connections,
        "statuses": dict(sorted(counts.items())),
        "5xx": sum(v for k, v in counts.items() if k.startswith("5")),
        "seconds": round(elapsed, 1),
    }


def percentiles(values: list[float]) -> dict[str, float]:
    """p50 and p99 in milliseconds."""
    if not values:
        return {"p50_ms": float("nan"), "p99_ms": float("nan")}
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"p50_ms": statistics.median(ordered) * 1000, "p99_ms": p99 * 1000}


def stream_summary(results: list[Result]) -> dict[str, float]:
    ttft = percentiles([r.ttft for r in results if r.ttft is not None])
    tpot = percentiles([t for r in results if (t := r.per_token) is not None])
    gap = percentiles([g for r in results for g in r.gaps])
    return {
        "ttft_p50_ms": ttft["p50_ms"],
        "ttft_p99_ms": ttft["p99_ms"],
        "per_token_p50_ms": tpot["p50_ms"],
        "per_token_p99_ms": tpot["p99_ms"],
        "chunk_gap_p50_ms": gap["p50_ms"],
        "chunk_gap_p99_ms": gap["p99_ms"],
    }
