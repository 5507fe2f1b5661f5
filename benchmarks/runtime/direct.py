"""The baseline: the same requests straight into the engine, no HTTP, no serving stack.

    python benchmarks/runtime/direct.py --engine vllm --model DIR  (prints one JSON object)

Measures what load.py measures over HTTP: latency of a whole request, time to first token
and time per token when streaming, and throughput at the given concurrencies.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from typing import Any

from load import percentiles

from kubellm_runtime.contract import EngineArgs, ModelArgs, ServeArgs
from kubellm_runtime.engine.base import Engine, GenerationRequest, Sampling
from kubellm_runtime.engine.fake import FakeEngine


def start(kind: str, model: str, extra: dict[str, str]) -> Engine:
    if kind == "fake":
        return FakeEngine(model_name="bench")
    from kubellm_runtime.engine.vllm_engine import VLLMEngine  # noqa: PLC0415 - heavy

    args = ServeArgs(
        model=ModelArgs(uri=f"file://{model}", served_name="bench", max_model_len=256),
        engine=EngineArgs(gpu_memory_utilization=0.2, extra_args=extra),
    )
    return VLLMEngine.start(args, model)


async def one(
    engine: Engine, prompt: str, max_tokens: int
) -> tuple[float, float | None, list[float], int]:
    request = GenerationRequest(
        request_id=uuid.uuid4().hex,
        prompt=prompt,
        sampling=Sampling(max_tokens=max_tokens, temperature=0),
    )
    start = time.perf_counter()
    first, last, gaps, tokens = None, None, [], 0
    async for chunk in engine.generate(request):
        now = time.perf_counter()
        if chunk.text:
            if first is None:
                first = now - start
            elif last is not None:
                gaps.append(now - last)
            last = now
        tokens = chunk.completion_tokens
    return time.perf_counter() - start, first, gaps, tokens


async def measure(engine: Engine, args: argparse.Namespace) -> dict[str, Any]:
    await one(engine, args.prompt, args.max_tokens)  # warm-up
    runs = [await one(engine, args.prompt, args.max_tokens) for _ in range(args.count)]
    latency = percentiles([r[0] for r in runs])
    ttft = percentiles([r[1] for r in runs if r[1] is not None])
    gaps = percentiles([g for r in runs for g in r[2]])
    tpot = percentiles([(r[0] - r[1]) / (r[3] - 1) for r in runs if r[1] is not None and r[3] > 1])
    throughput = []
    for workers in args.concurrency:
        total = max(workers, args.throughput_requests)
        started = time.perf_counter()
        done = await _pool(engine, args, workers, total)
        elapsed = time.perf_counter() - started
        throughput.append(
            {
                "concurrency": workers,
                "requests": total,
                "seconds": round(elapsed, 2),
                "requests_per_s": round(total / elapsed, 1),
                "tokens_per_s": round(sum(r[3] for r in done) / elapsed, 1),
            }
        )
    return {
        "latency_p50_ms": latency["p50_ms"],
        "latency_p99_ms": latency["p99_ms"],
        "ttft_p50_ms": ttft["p50_ms"],
        "ttft_p99_ms": ttft["p99_ms"],
        "per_token_p50_ms": tpot["p50_ms"],
        "per_token_p99_ms": tpot["p99_ms"],
        "chunk_gap_p50_ms": gaps["p50_ms"],
        "chunk_gap_p99_ms": gaps["p99_ms"],
        "throughput": throughput,
    }


async def _pool(
    engine: Engine, args: argparse.Namespace, workers: int, total: int
) -> list[tuple[float, float | None, list[float], int]]:
    queue = list(range(total))
    done: list[tuple[float, float | None, list[float], int]] = []

    async def worker() -> None:
        while queue:
            queue.pop()
            done.append(await one(engine, args.prompt, args.throughput_tokens))

    await asyncio.gather(*(worker() for _ in range(workers)))
    return done


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--engine", choices=("fake", "vllm"), required=True)
    parser.add_argument("--model", default="")
    parser.add_argument("--prompt", default="The capital of France is")
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--concurrency", type=int, nargs="*", default=[1, 16, 256])
    parser.add_argument("--throughput-requests", type=int, default=64)
    parser.add_argument("--throughput-tokens", type=int, default=32)
    parser.add_argument("--engine-arg", action="append", default=["enforce-eager=true"])
    args = parser.parse_args()

    async def run() -> dict[str, Any]:
        extra = dict(item.split("=", 1) for item in args.engine_arg)
        engine = start(args.engine, args.model, extra)
        try:
            return await measure(engine, args)
        finally:
            await engine.shutdown()

    print(json.dumps(asyncio.run(run())))


if __name__ == "__main__":  # vLLM spawns processes
    main()
