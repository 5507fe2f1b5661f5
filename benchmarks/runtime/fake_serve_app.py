"""kubellm's Ray Serve application on the zero-cost fake engine: the Serve path's own ceiling.

The same deployment as production (its name, the operator's serveConfigV2 options, the
kubellm ingress, admission, metrics and SSE), with only the engine replaced: no model is
loaded and tokens cost nothing. What it serves per second on this machine is what Ray Serve's
proxy, router and replica plus the ingress can carry when the engine needs no CPU at all.
``serve_path.ray_serve(..., fake=True)`` deploys it in place of ``kubellm_runtime.serve.app``.
"""

from __future__ import annotations

from typing import Any

from ray import serve
from ray.serve import Application

from kubellm_runtime.contract import SERVE_DEPLOYMENT, ServeArgs
from kubellm_runtime.engine.fake import FakeEngine
from kubellm_runtime.serve import app as kubellm_app
from kubellm_runtime.settings import RuntimeSettings


async def fake_engine(args: ServeArgs, settings: RuntimeSettings) -> FakeEngine:
    del settings  # nothing to download or start
    return FakeEngine(
        model_name=args.model.served_name, max_model_len=args.model.max_model_len or 2048
    )


# Each replica imports this module to unpickle the deployment below: from then on its
# LLMServer constructor starts the fake engine instead of resolving and loading the model.
kubellm_app.load_engine = fake_engine  # type: ignore[attr-defined]


@serve.deployment(name=SERVE_DEPLOYMENT)
class FakeLLMServer(kubellm_app.LLMServer.func_or_class):  # type: ignore[misc, name-defined]
    """kubellm's LLMServer, unchanged; defined here so its replicas import this module."""

    async def __init__(self, args: dict[str, Any]) -> None:  # type: ignore[misc]
        await super().__init__(args)


def build_app(args: dict[str, Any]) -> Application:
    ServeArgs.model_validate(args)
    return FakeLLMServer.bind(args)  # type: ignore[no-any-return]
