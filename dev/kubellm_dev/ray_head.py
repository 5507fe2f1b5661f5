"""A real local Ray head on loopback, behind the bridge's real mode."""

from __future__ import annotations

import os
import shutil
import sys
import urllib.request
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path

from kubellm_dev import netns
from kubellm_dev.errors import ComponentError
from kubellm_dev.procs import Managed, Supervisor

# Ray's first start (GCS, raylet, dashboard and its agents) takes ~5 s on 2 cores; a cold
# import cache or a busy machine can triple that.
RAY_READY_TIMEOUT = 120.0


@dataclass(frozen=True)
class RayPorts:
    gcs: int = 6379
    dashboard: int = 8265
    serve: int = 8000
    client: int = 10001
    metrics: int = 8080
    """Ray's metrics export port (the agent's Prometheus endpoint; KubeRay's pods use 8080)."""


def ray_env(temp_dir: Path) -> dict[str, str]:
    return {
        "RAY_AUTH_MODE": "disabled",  # Ray 2.60 turns token auth on by default
        "RAY_USAGE_STATS_ENABLED": "0",
        # vLLM-CPU in Serve replicas of this head: a small KV cache (GiB) fits the test machine.
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "RAY_TMPDIR": str(temp_dir),
        # Job entrypoints run `python` through a shell: it must be this environment's Python.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        # No proxy for Ray's own loopback traffic, whatever the caller's environment says.
        "NO_PROXY": "*",
        "no_proxy": "*",
    }


def start_ray_head(
    supervisor: Supervisor,
    temp_dir: Path,
    ports: RayPorts | None = None,
    extra_env: dict[str, str] | None = None,
) -> Managed:
    """Start `ray start --head --block` on 127.0.0.1 and wait for its dashboard.

    ``extra_env`` reaches every Ray process (Serve's proxy and replicas read their options
    from the environment, as they would from a RayCluster's container env)."""
    netns.require_loopback_only("a real Ray head")
    ports = ports or RayPorts()
    ray = Path(sys.executable).parent / "ray"
    if not ray.exists():
        raise ComponentError("ray", f"{ray} not found: run scripts/install.sh")
    shutil.rmtree(temp_dir, ignore_errors=True)
    temp_dir.mkdir(parents=True)
    head = supervisor.start(
        "ray-head",
        [
            str(ray),
            "start",
            "--head",
            "--block",
            "--node-ip-address=127.0.0.1",
            f"--port={ports.gcs}",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={ports.dashboard}",
            f"--ray-client-server-port={ports.client}",
            f"--metrics-export-port={ports.metrics}",
            "--num-cpus=4",
            "--include-dashboard=true",
            "--disable-usage-stats",
            f"--temp-dir={temp_dir}",
        ],
        env={**ray_env(temp_dir), **(extra_env or {})},
        ports=[ports.gcs, ports.dashboard, ports.serve, ports.metrics],
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def dashboard_up() -> bool:
        with opener.open(f"http://127.0.0.1:{ports.dashboard}/api/version", timeout=2) as resp:
            return bool(resp.status == HTTPStatus.OK)

    supervisor.wait_ready(
        head, dashboard_up, timeout=RAY_READY_TIMEOUT, what="serving its dashboard"
    )
    return head
