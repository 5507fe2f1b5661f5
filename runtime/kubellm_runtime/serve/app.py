"""The Ray Serve application the operator names in serveConfigV2 (`...serve.app:build_app`).

One deployment, ``LLMServer``: each replica loads the engine in its constructor (so Ray Serve,
and through it KubeRay, report the application RUNNING only once the model is loaded; a model
that cannot be loaded fails the deployment with the reason) and serves the same FastAPI ingress
as local mode.
"""

from __future__ import annotations

from typing import Any

from ray import serve
from ray.serve import Application

from kubellm_runtime import metrics
from kubellm_runtime.adapters import Adapters
from kubellm_runtime.contract import SERVE_DEPLOYMENT, ReplicaConfig, ServeArgs
from kubellm_runtime.ingress import EngineSlot, create_app
from kubellm_runtime.jobs import job_store
from kubellm_runtime.loading import load_engine
from kubellm_runtime.logs import configure
from kubellm_runtime.settings import RuntimeSettings


@serve.deployment(name=SERVE_DEPLOYMENT)
@serve.ingress()
class LLMServer:
    """A model replica: engine + ingress. Options come from serveConfigV2's deployment entry."""

    async def __init__(self, args: dict[str, Any]) -> None:  # type: ignore[misc]  # Serve awaits it
        self.args = ServeArgs.model_validate(args)  # validated again on this side of the contract
        settings = RuntimeSettings().with_limits(self.args.limits)
        self.settings = settings.with_auth(self.args.api_key_env)  # fails closed
        configure(self.settings.log_format, self.settings.log_level)
        # /metrics here sits behind Serve's load-balanced proxy: Ray's agent on this pod
        # exports this replica's series instead (the chart's PodMonitor scrapes it).
        metrics.export_to_ray()
        engine = await load_engine(self.args, self.settings)
        adapters = Adapters(engine, self.settings, self.args.lora.enabled)
        self.slot = EngineSlot(engine=engine, adapters=adapters)

    async def reconfigure(self, user_config: dict[str, Any]) -> None:
        """Ray Serve calls this after the constructor and on every user_config change: the
        adapters the LLMDeployment lists, applied live on every replica. A source that cannot
        be loaded fails the update with its reason (shown on the LLMDeployment's status)."""
        config = ReplicaConfig.model_validate(user_config)
        assert self.slot.adapters is not None  # set by the constructor
        await self.slot.adapters.apply(config)

    def __serve_build_asgi_app__(self) -> Any:
        # job_id and Idempotency-Key results are shared by every replica of the Ray cluster
        # (or by every replica using the configured Redis).
        scope = self.settings.job_scope or self.args.model.served_name
        jobs = job_store(self.settings, scope=scope, on_ray=True)
        replica = serve.get_replica_context().replica_id.unique_id
        return create_app(self.slot, settings=self.settings, jobs=jobs, replica=replica)

    async def check_health(self) -> None:
        """Ray Serve's health check: the engine must still be able to serve."""
        engine = self.slot.engine
        if engine is None or not engine.ready():
            raise RuntimeError(self.slot.failure or "engine not ready")


def build_app(args: dict[str, Any]) -> Application:
    """Ray Serve application builder: ``args`` is the runtime contract from the operator."""
    ServeArgs.model_validate(args)  # fail the deploy early with a clear message
    return LLMServer.bind(args)  # type: ignore[attr-defined, no-any-return]
