"""Local mode, no Ray: `python -m kubellm_runtime.serve --model DIR [--port 8000]`."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

import uvicorn

from kubellm_runtime.app import EngineSlot, Hook, create_app
from kubellm_runtime.contract import EngineArgs, ModelArgs, ServeArgs
from kubellm_runtime.engine.fake import FakeEngine
from kubellm_runtime.settings import RuntimeSettings
from kubellm_runtime.sources import SourceError, resolve

log = logging.getLogger("kubellm_runtime.serve")


def parse_args(argv: list[str] | None = None) -> tuple[ServeArgs, argparse.Namespace]:
    parser = argparse.ArgumentParser(prog="python -m kubellm_runtime.serve")
    parser.add_argument("--model", required=True, help="model directory or file:// / pvc:// URI")
    parser.add_argument("--served-name", help="name clients pass as `model` (default: directory)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--max-model-len", type=int)
    parser.add_argument("--dtype", default="auto")
    parser.add_argument(
        "--gpu-memory-utilization",
        type=float,
        default=0.9,
        help="fraction of accelerator memory (on CPU builds: of host memory) vLLM may use",
    )
    parser.add_argument(
        "--engine-arg", action="append", default=[], metavar="KEY=VALUE", help="extra vLLM argument"
    )
    parser.add_argument(
        "--engine",
        choices=("vllm", "fake"),
        default="vllm",
        help="fake: a zero-cost engine (the serving stack's own ceiling, drain tests)",
    )
    parser.add_argument("--fake-token-delay", type=float, default=0.0, help="seconds per token")
    ns = parser.parse_args(argv)
    uri = ns.model if "://" in ns.model else f"file://{Path(ns.model).resolve()}"
    extra = dict(item.split("=", 1) for item in ns.engine_arg)
    args = ServeArgs(
        model=ModelArgs(
            uri=uri,
            served_name=ns.served_name or Path(uri.rstrip("/")).name,
            dtype=ns.dtype,
            max_model_len=ns.max_model_len,
        ),
        engine=EngineArgs(extra_args=extra, gpu_memory_utilization=ns.gpu_memory_utilization),
    )
    return args, ns


async def load_engine(slot: EngineSlot, args: ServeArgs) -> None:
    """Load in the background: /health answers at once, /ready once the model is loaded."""
    try:
        path = await asyncio.to_thread(resolve, args.model.uri, args.model.revision)
    except SourceError as exc:
        slot.failure = str(exc)
        log.error("cannot load the model: %s", exc)  # noqa: TRY400 - the reason, no traceback
        return
    from kubellm_runtime.engine.vllm_engine import VLLMEngine  # noqa: PLC0415 - heavy import

    try:
        slot.engine = await asyncio.to_thread(VLLMEngine.start, args, str(path))
    except Exception as exc:  # any load failure must surface in readiness
        slot.failure = f"{type(exc).__name__}: {exc}"
        log.exception("model failed to load")


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    args, ns = parse_args(argv)
    slot = EngineSlot()
    tasks: set[asyncio.Task[None]] = set()

    async def start_loading(s: EngineSlot) -> None:
        task = asyncio.create_task(load_engine(s, args))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    if ns.engine == "fake":
        slot.engine = FakeEngine(model_name=args.model.served_name, token_delay=ns.fake_token_delay)
        hooks: list[Hook] = []
    else:
        hooks = [start_loading]
    settings = RuntimeSettings()
    app = create_app(slot, hooks, settings)
    # SIGTERM: uvicorn stops accepting and drains in-flight requests for up to drain_seconds.
    uvicorn.run(
        app,
        host=ns.host,
        port=ns.port,
        log_level="info",
        timeout_graceful_shutdown=int(settings.drain_seconds),
    )


if __name__ == "__main__":  # vLLM spawns processes: the guard is required
    main()
