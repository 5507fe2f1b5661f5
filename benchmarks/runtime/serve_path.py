"""kubellm as users reach it: a real Ray head running the Serve application the operator writes.

The application config is the operator's own serveConfigV2 for an LLMDeployment spec (built by
``kubellm_operator.builders.serve_config``), deployed through the Ray dashboard's declarative
API as KubeRay does; requests go through Ray Serve's HTTP proxy (proxy → router → replica →
the kubellm ingress), which is what a client of the serve Service hits.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kubellm_dev.serve_local import local_serve
from kubellm_operator.api.llmdeployment import LLMDeploymentSpec


def spec_for(model: Path, served_name: str, engine_args: dict[str, str], **extra: Any) -> Any:
    """The LLMDeployment spec a user would write for this model on a CPU node."""
    return LLMDeploymentSpec.parse(
        {
            "model": {"uri": f"file://{model}", "servedName": served_name, "maxModelLen": 256},
            # All the machine's cores, as the other paths' engines have them.
            "resources": {"gpusPerReplica": 0, "cpu": str(os.cpu_count()), "memory": "4Gi"},
            "placement": {"nodePool": "cpu"},
            "engine": {"gpuMemoryUtilization": 0.2, "extraArgs": engine_args},
            **extra,
        }
    )


FAKE_APP = "fake_serve_app:build_app"
"""kubellm's Serve application on the zero-cost engine (``fake_serve_app.py``, beside this)."""


@contextmanager
def ray_serve(
    spec: Any, logs: Path, env: dict[str, str] | None = None, *, fake: bool = False
) -> Iterator[int]:
    """A Ray head with the operator's serve config for ``spec`` RUNNING; yields the proxy port.
    ``fake`` runs the same application on the zero-cost engine: the Serve path's own ceiling."""
    env = dict(env or {})
    if fake:  # every Ray worker imports the benchmark's application from here
        here = str(Path(__file__).parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH")) if p)
    with local_serve(spec, logs, env, import_path=FAKE_APP if fake else None) as serve:
        yield int(serve.proxy.rsplit(":", 1)[1])
