"""Where the Serve path's CPU goes: CPU seconds per process while streams go through Ray Serve.

    .venv/bin/kubellm-dev netns -- .venv/bin/python benchmarks/runtime/serve_cpu.py

Starts the Serve path of ``bench_runtime.py`` (a real Ray head running the operator's
serveConfigV2 on SmolLM2), sends 20 sequential 32-token streams through the Serve proxy and
prints, per process, the CPU seconds it used during them (from /proc).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import serve_path

from kubellm_dev import netns, smollm2

STREAMS = 20
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
TICK = os.sysconf("SC_CLK_TCK")


def stream(port: int) -> None:
    body = {"model": "bench", "prompt": "The capital of France is", "max_tokens": 32}
    body |= {"temperature": 0, "stream": True, "ignore_eos": True}
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with OPENER.open(request, timeout=120) as reply:
        for _ in reply:
            pass


def processes() -> dict[int, tuple[float, str]]:
    """CPU seconds and command of every process, by pid."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:100]
        except (OSError, UnicodeDecodeError):
            continue
        found[int(entry.name)] = ((int(stat[11]) + int(stat[12])) / TICK, command)
    return found


def main() -> None:
    if not netns.loopback_only():
        sys.exit("run inside the loopback-only namespace: .venv/bin/kubellm-dev netns -- ...")
    spec = serve_path.spec_for(smollm2.convert(), "bench", {"enforce-eager": "true"})
    logs = Path(tempfile.mkdtemp(prefix="kubellm-serve-cpu-"))
    with serve_path.ray_serve(spec, logs, env={"VLLM_CPU_KVCACHE_SPACE": "1"}) as port:
        stream(port)  # warm-up
        before, started = processes(), time.monotonic()
        for _ in range(STREAMS):
            stream(port)
        wall, after = time.monotonic() - started, processes()
    print(f"{STREAMS} streams of 32 tokens through the Serve proxy in {wall:.1f} s")
    used = [(cpu - before[pid][0], pid, cmd) for pid, (cpu, cmd) in after.items() if pid in before]
    for cpu, pid, cmd in sorted(used, reverse=True):
        if cpu >= 0.01:
            print(f"{cpu:7.2f} s  {pid:7d}  {cmd}")


if __name__ == "__main__":
    main()
