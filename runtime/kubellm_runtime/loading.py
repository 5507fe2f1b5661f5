"""Start-up of one replica: resolve the model, start the configured engine.

Shared by the Ray Serve deployment and local mode, so both load the same way and log the same
progress. A failure raises with the reason; the caller decides whether that fails the
deployment (Ray Serve) or readiness (local mode).
"""

from __future__ import annotations

import asyncio
import time

import structlog

from kubellm_runtime.contract import ServeArgs
from kubellm_runtime.engine.base import Engine
from kubellm_runtime.settings import RuntimeSettings
from kubellm_runtime.sources import resolve

log = structlog.get_logger(__name__)


def _start(args: ServeArgs, model_path: str) -> Engine:
    # Imported here: each backend pulls in a heavy stack, and a replica needs only one.
    if args.engine.backend == "transformers":
        from kubellm_runtime.engine.transformers_engine import TransformersEngine  # noqa: PLC0415

        return TransformersEngine.start(args, model_path)
    from kubellm_runtime.engine.vllm_engine import VLLMEngine  # noqa: PLC0415

    return VLLMEngine.start(args, model_path)


async def load_engine(args: ServeArgs, settings: RuntimeSettings) -> Engine:
    """The ready engine (adapters come after, from the replica's config: ``adapters``)."""
    started = time.monotonic()
    model = args.model
    log.info("resolving model", model=model.served_name, uri=model.uri)
    path = await asyncio.to_thread(resolve, model.uri, model.revision, settings)
    log.info(
        "starting engine", model=model.served_name, backend=args.engine.backend, path=str(path)
    )
    # In a thread: vLLM starts its output handler lazily on the loop that first generates.
    engine = await asyncio.to_thread(_start, args, str(path))
    log.info("model ready", model=model.served_name, seconds=round(time.monotonic() - started, 1))
    return engine
