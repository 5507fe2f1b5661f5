"""A one-deployment Serve application: proves KubeRay's serveConfigV2 really ran on Ray."""

from __future__ import annotations

from typing import Any

from ray import serve

GREETING = "hello from a real Ray Serve replica"


@serve.deployment(num_replicas=1, ray_actor_options={"num_cpus": 0})
class Hello:
    """Answers every request with a fixed greeting."""

    async def __call__(self, request: Any) -> str:
        return GREETING


app = Hello.bind()  # type: ignore[attr-defined]  # added by @serve.deployment
