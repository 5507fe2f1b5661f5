"""Runtime benchmark: what the serving stack adds over the engine, and how it holds under load.

Run by hand inside a loopback-only namespace (vLLM and every server bind loopback only):

    .venv/bin/kubellm-dev netns -- .venv/bin/python benchmarks/runtime/bench_runtime.py

Two rounds, each against servers this script starts and stops:
1. the zero-cost fake engine (the stack's own ceiling): engine called directly vs through the
   kubellm ingress; 2,000 concurrent connections; memory per open stream;
2. vLLM-CPU (SmolLM2-135M by default), side by side on the same model and engine options, one
   after another so they do not share the two cores: the engine called directly, vLLM's own
   OpenAI server (`python -m vllm.entrypoints.openai.api_server`, the anchor), kubellm in
   local mode, and kubellm through a real Ray Serve proxy running the serve config the
   operator writes (what users hit). For each: latency, TTFT and per-token p50/p99, throughput
   at 1, 16, 64 and 256 concurrent streams, and floods of 2,000 and 10,000 connections.
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
import serve_path

from kubellm_dev import netns, tiny_model
from kubellm_dev.procs import Managed, Supervisor

HERE = Path(__file__).parent
PROMPT = "The capital of France is"
NAME = "bench"  # the served model name on every path
VLLM_OPTIONS = ("--max-model-len", "256", "--gpu-memory-utilization", "0.2")
ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_LOGGING_LEVEL": "WARNING"}
URL = "http://127.0.0.1:{port}/v1/completions"
CONCURRENCY = (1, 16, 64, 256)
FLOODS = (2000, 10000)
PATHS = ("direct", "vllm_api_server", "kubellm", "kubellm_serve")


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


def stray_engines() -> list[str]:
    """Engine and Ray worker processes still alive (vLLM names its own ``VLLM::...``)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")[0].decode()
        except (OSError, UnicodeDecodeError):
            continue
        if command.startswith(("VLLM::", "ray::")):
            found.append(f"{entry.name} {command}")
    return found


def wait_quiet(deadline_s: float = 180) -> None:
    """No path is measured while another path's engine still runs: they share two cores."""
    deadline = time.monotonic() + deadline_s
    while stray := stray_engines():
        if time.monotonic() > deadline:
            raise RuntimeError(f"engine processes outlived their server: {stray}")
        time.sleep(0.5)


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
        wait_quiet()


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
        for workers in CONCURRENCY
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
    if "kubellm_serve" in args.paths:  # the same application behind Ray Serve's proxy
        spec = serve_path.spec_for(model, NAME, {})
        env = ENV | parse_env(args.serve_env)
        with serve_path.ray_serve(spec, logs, env=env, fake=True) as serve_port:
            results["kubellm_serve"] = asyncio.run(over_http(serve_port, args))
        wait_quiet()
    if args.fake_ceiling_only:
        return results
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


def _measured(port: int, args: argparse.Namespace) -> dict[str, Any]:
    """Latency and throughput, then the floods (last: they may leave the server busy)."""
    figures = asyncio.run(over_http(port, args))
    flood = load.body(NAME, 16, True, PROMPT)
    for connections in args.floods:
        figures[f"flood_{connections}"] = asyncio.run(
            load.flood(URL.format(port=port), flood, connections, 600)
        )
    return figures


def round_vllm(model: Path, logs: Path, args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    if "direct" in args.paths:
        results["direct"] = direct("vllm", model, args)
    if "vllm_api_server" in args.paths:
        port = free_port()
        theirs = [
            sys.executable,
            *("-m", "vllm.entrypoints.openai.api_server", "--model", str(model)),
            *("--served-model-name", NAME, "--host", "127.0.0.1", "--port", str(port)),
            *VLLM_OPTIONS,
            "--enforce-eager",
        ]
        with server("vllm-api-server", theirs, port, "/health", logs, env={}):
            results["vllm_api_server"] = _measured(port, args)
    if "kubellm" in args.paths:
        port = free_port()
        ours = kubellm(model, port, "vllm", *VLLM_OPTIONS, "--engine-arg", "enforce-eager=true")
        with server("kubellm-vllm", ours, port, "/ready", logs, env={}):
            results["kubellm"] = _measured(port, args)
    if "kubellm_serve" in args.paths:
        spec = serve_path.spec_for(model, NAME, {"enforce-eager": "true"})
        with serve_path.ray_serve(spec, logs, env=ENV | parse_env(args.serve_env)) as port:
            results["kubellm_serve"] = _measured(port, args)
        wait_quiet()
    return results


def parse_env(pairs: list[str]) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in pairs)


def table(results: dict[str, Any]) -> str:
    rows = ["| round | path | latency p50 / p99 ms | TTFT p50 / p99 ms | per token p50 / p99 ms |"]
    rows.append("|---|---|---|---|---|")
    for name, data in results.items():
        if not isinstance(data, dict) or name in ("machine",):
            continue
        for path in PATHS:
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
        for path in PATHS:
            for t in (data.get(path) or {}).get("throughput", []):
                rows.append(
                    f"| {name} | {path} | {t['concurrency']} | {t['requests_per_s']} "
                    f"| {t['tokens_per_s']} |"
                )
    return "\n".join(rows)


def versus_anchor(name: str, data: dict[str, Any]) -> None:
    """Each kubellm path against vLLM's own server: TTFT and throughput ratios."""
    anchor = data.get("vllm_api_server")
    for path in ("kubellm", "kubellm_serve"):
        r = data.get(path)
        if not anchor or not r:
            continue
        ratios = "/".join(
            f"{t['tokens_per_s'] / max(a['tokens_per_s'], 1e-9):.2f}"
            for t, a in zip(r["throughput"], anchor["throughput"], strict=True)
        )
        print(
            f"{name} {path} vs vLLM's server: TTFT p50 "
            f"{r['ttft_p50_ms'] - anchor['ttft_p50_ms']:+.2f} ms, tokens/s x{ratios} "
            f"at {'/'.join(map(str, CONCURRENCY))} streams"
        )


def report(results: dict[str, Any], args: argparse.Namespace) -> None:
    """The tables, the floods and the time each path adds over the bare engine."""
    print(table(results))
    for name, data in results.items():
        if isinstance(data, dict):
            for key in ("flood", "memory"):
                if key in data:
                    print(f"{name} {key}: {json.dumps(data[key])}")
            for path in PATHS:
                for connections in args.floods:
                    flood = (data.get(path) or {}).get(f"flood_{connections}")
                    if flood:
                        print(f"{name} {path} flood: {json.dumps(flood)}")
    for name, data in results.items():
        if isinstance(data, dict) and "direct" in data:
            base = data["direct"]
            for path in PATHS[1:]:
                if path in data:
                    r = data[path]
                    print(
                        f"{name} {path} over the bare engine: "
                        f"+{r['latency_p50_ms'] - base['latency_p50_ms']:.3f} ms latency p50, "
                        f"+{r['ttft_p50_ms'] - base['ttft_p50_ms']:.3f} ms TTFT p50, "
                        f"+{r['per_token_p50_ms'] - base['per_token_p50_ms']:.3f} ms per token p50"
                    )
        if isinstance(data, dict):
            versus_anchor(name, data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=200, help="sequential requests per path")
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--throughput-requests", type=int, default=256)
    parser.add_argument("--throughput-tokens", type=int, default=32)
    parser.add_argument("--streams", type=int, default=1000, help="open streams for memory")
    parser.add_argument("--rounds", nargs="*", default=["fake", "vllm"])
    parser.add_argument(
        "--fake-ceiling-only",
        action="store_true",
        help="fake round: latency and throughput only (no flood, no memory run)",
    )
    parser.add_argument("--floods", nargs="*", type=int, default=list(FLOODS))
    parser.add_argument("--paths", nargs="*", choices=PATHS, default=list(PATHS))
    parser.add_argument(
        "--serve-env",
        nargs="*",
        default=[],
        help="NAME=VALUE for the Ray processes of the Serve path (to profile Serve's options)",
    )
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

    if stray := stray_engines():
        sys.exit(f"engine processes already running, figures would be wrong: {stray}")
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
    report(results, args)
    print(f"raw figures: {args.out}")


if __name__ == "__main__":
    main()
