"""The Ray Serve application the operator names in serveConfigV2 (`...serve.app:build_app`).

One deployment, ``LLMServer``: each replica loads the engine in its constructor (so Ray Serve,
and through it KubeRay, report the application RUNNING only once the model is loaded; a model
that cannot be loaded fails the deployment with the reason) and serves the same FastAPI ingress
as local mode.
"""

from __future__ import annotations

import logging
from typing import Any

from ray import serve
from ray.serve import Application

from kubellm_runtime.app import EngineSlot, create_app
from kubellm_runtime.contract import ServeArgs
from kubellm_runtime.engine.vllm_engine import VLLMEngine
from kubellm_runtime.sources import resolve

log = logging.getLogger(__name__)
DEPLOYMENT = "LLMServer"  # the operator's serveConfigV2 configures a deployment by this name


@serve.deployment(name=DEPLOYMENT)
@serve.ingress()
class LLMServer:
    """A model replica: engine + ingress. Options come from serveConfigV2's deployment entry."""

    async def __init__(self, args: dict[str, Any]) -> None:  # type: ignore[misc]  # Serve awaits it
        self.args = ServeArgs.model_validate(args)  # validated again on this side of the contract
        model_path = resolve(self.args.model.uri, self.args.model.revision)
        # On the replica's event loop, so the engine's output handler lives where requests run.
        engine = VLLMEngine.start(self.args, str(model_path))
        for adapter in self.args.lora.adapters:
            path = resolve(adapter.uri)
            await engine.add_adapter(adapter.name, str(path))
            log.info("adapter %s loaded from %s", adapter.name, path)
        self.slot = EngineSlot(engine=engine)

    def __serve_build_asgi_app__(self) -> Any:
        return create_app(self.slot)

    async def check_health(self) -> None:
        """Ray Serve's health check: the engine must still be able to serve."""
        engine = self.slot.engine
        if engine is None or not engine.ready():
            raise RuntimeError(self.slot.failure or "engine not ready")


def build_app(args: dict[str, Any]) -> Application:
    """Ray Serve application builder: ``args`` is the runtime contract from the operator."""
    ServeArgs.model_validate(args)  # fail the deploy early with a clear message
    return LLMServer.bind(args)  # type: ignore[attr-defined, no-any-return]
