"""kubellm as users reach it: a real Ray head running the Serve application the operator writes.

The application config is the operator's own serveConfigV2 for an LLMDeployment spec (built by
``kubellm_operator.builders.serve_config``), deployed through the Ray dashboard's declarative
API as KubeRay does; requests go through Ray Serve's HTTP proxy (proxy → router → replica →
the kubellm ingress), which is what a client of the serve Service hits.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from kubellm_dev.procs import Supervisor
from kubellm_dev.ray_head import RayPorts, start_ray_head
from kubellm_operator.builders.serve_config import serve_config
from kubellm_operator.config import OperatorConfig
from kubellm_operator.parse import parse_spec

DEPLOY_TIMEOUT_S = 600.0
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def spec_for(model: Path, served_name: str, engine_args: dict[str, str], **extra: Any) -> Any:
    """The LLMDeployment spec a user would write for this model on a CPU node."""
    return parse_spec(
        {
            "model": {"uri": f"file://{model}", "servedName": served_name, "maxModelLen": 256},
            # All the machine's cores, as the other paths' engines have them.
            "resources": {"gpusPerReplica": 0, "cpu": str(os.cpu_count()), "memory": "4Gi"},
            "placement": {"nodePool": "cpu"},
            "engine": {"gpuMemoryUtilization": 0.2, "extraArgs": engine_args},
            **extra,
        }
    )


def _request(url: str, method: str = "GET", body: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method)  # noqa: S310 - loopback
    request.add_header("Content-Type", "application/json")
    try:
        with OPENER.open(request, timeout=10) as reply:
            return int(reply.status), reply.read()
    except OSError:
        return 0, b""


def _app_status(dashboard: str) -> str:
    status, body = _request(f"{dashboard}/api/serve/applications/")
    if status != 200:
        return ""
    apps = json.loads(body).get("applications") or {}
    return str((apps.get("llm") or {}).get("status", ""))


@contextmanager
def ray_serve(spec: Any, logs: Path, env: dict[str, str] | None = None) -> Iterator[int]:
    """A Ray head with the operator's serve config for ``spec`` RUNNING; yields the proxy port."""
    ports = RayPorts()
    supervisor = Supervisor(logs)
    temp = Path(tempfile.gettempdir()) / "kubellm-bench-ray"
    try:
        start_ray_head(supervisor, temp, ports, extra_env=env)
        dashboard = f"http://127.0.0.1:{ports.dashboard}"
        config = yaml.safe_load(serve_config(spec, (), OperatorConfig()))
        status, body = _request(
            f"{dashboard}/api/serve/applications/", "PUT", json.dumps(config).encode()
        )
        if status != 200:
            raise RuntimeError(f"serve deploy refused ({status}): {body[:500]!r}")
        deadline = time.monotonic() + DEPLOY_TIMEOUT_S
        while (state := _app_status(dashboard)) != "RUNNING":
            if state == "DEPLOY_FAILED" or time.monotonic() > deadline:
                raise RuntimeError(f"serve application ended {state or 'unreachable'}")
            time.sleep(1)
        proxy = f"http://127.0.0.1:{ports.serve}/v1/models"
        while _request(proxy)[0] != 200:
            if time.monotonic() > deadline:
                raise RuntimeError("the Serve proxy never answered /v1/models")
            time.sleep(0.5)
        yield ports.serve
        _delete_apps(dashboard)
    finally:
        supervisor.stop_all()


def _delete_apps(dashboard: str) -> None:
    """Shut the application down as Serve does on a redeploy, before the head goes: a replica
    killed with its head leaves vLLM's engine processes behind, spinning, and they would slow
    whatever the benchmark measures next."""
    _request(f"{dashboard}/api/serve/applications/", "DELETE")
    deadline = time.monotonic() + DEPLOY_TIMEOUT_S
    while _app_status(dashboard) not in ("", "NOT_STARTED"):
        if time.monotonic() > deadline:
            raise RuntimeError("the Serve application was never deleted")
        time.sleep(0.5)
