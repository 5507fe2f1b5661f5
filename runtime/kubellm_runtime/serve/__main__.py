"""Local mode, no Ray: `python -m kubellm_runtime.serve --model DIR [--port 8000]`."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from types import FrameType

import structlog
import uvicorn

from kubellm_runtime.adapters import Adapters
from kubellm_runtime.contract import (
    AdapterArgs,
    EngineArgs,
    LoraArgs,
    ModelArgs,
    ReplicaConfig,
    ServeArgs,
)
from kubellm_runtime.engine.fake import FakeEngine
from kubellm_runtime.generations import Generations
from kubellm_runtime.ingress import EngineSlot, Hook, create_app
from kubellm_runtime.loading import load_engine
from kubellm_runtime.logs import configure
from kubellm_runtime.serve.protocol import head_deadline_protocol
from kubellm_runtime.settings import RuntimeSettings
from kubellm_runtime.sources import SourceError

log = structlog.get_logger("kubellm_runtime.serve")


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
        "--enable-lora", action="store_true", help="serve LoRA adapters (loaded at runtime)"
    )
    parser.add_argument(
        "--adapter",
        action="append",
        default=[],
        metavar="NAME=URI",
        help="a LoRA adapter to serve from the start (implies --enable-lora)",
    )
    parser.add_argument(
        "--adapter-source",
        action="append",
        default=[],
        metavar="PREFIX",
        help="a URI prefix clients may load adapters from (with KUBELLM_RUNTIME_ADMIN_KEY)",
    )
    parser.add_argument(
        "--tool-call-parser", help="vLLM's tool-call parser (tool_choice auto), e.g. hermes"
    )
    parser.add_argument(
        "--engine-arg", action="append", default=[], metavar="KEY=VALUE", help="extra vLLM argument"
    )
    parser.add_argument(
        "--engine",
        choices=("vllm", "transformers", "fake"),
        default="vllm",
        help="transformers: the fallback engine; fake: a zero-cost engine (the stack's ceiling)",
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
        lora=LoraArgs(enabled=ns.enable_lora or bool(ns.adapter)),
        engine=EngineArgs(
            backend="transformers" if ns.engine == "transformers" else "vllm",
            extra_args=extra,
            gpu_memory_utilization=ns.gpu_memory_utilization,
            tool_call_parser=ns.tool_call_parser,
        ),
    )
    return args, ns


def replica_config(ns: argparse.Namespace) -> ReplicaConfig:
    adapters = [AdapterArgs(name=n, uri=u) for n, u in (a.split("=", 1) for a in ns.adapter)]
    return ReplicaConfig(adapters=tuple(adapters), adapter_sources=tuple(ns.adapter_source))


async def load_in_background(
    slot: EngineSlot, args: ServeArgs, config: ReplicaConfig, settings: RuntimeSettings
) -> None:
    """/health answers at once; /ready once the model is loaded, or with why it failed."""
    try:
        engine = await load_engine(args, settings)
        adapters = Adapters(engine, settings, args.lora.enabled)
        await adapters.apply(config)
        slot.adapters = adapters
        slot.engine = engine
    except SourceError as exc:
        slot.failure = str(exc)
        log.error("cannot load the model", reason=slot.failure)  # noqa: TRY400 - a reason, not a bug
    except Exception as exc:  # any load failure must surface in readiness
        slot.failure = f"{type(exc).__name__}: {exc}"
        log.exception("model failed to load")


def main(argv: list[str] | None = None) -> None:
    args, ns = parse_args(argv)
    config = replica_config(ns)
    settings = RuntimeSettings()
    configure(settings.log_format, settings.log_level)
    slot = EngineSlot()
    tasks: set[asyncio.Task[None]] = set()

    async def start_loading(s: EngineSlot) -> None:
        task = asyncio.create_task(load_in_background(s, args, config, settings))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    if ns.engine == "fake":
        slot.engine = FakeEngine(model_name=args.model.served_name, token_delay=ns.fake_token_delay)
        slot.adapters = Adapters(slot.engine, settings, lora_enabled=True)
        slot.adapters.sources = config.adapter_sources
        hooks: list[Hook] = []
    else:
        hooks = [start_loading]
    app = create_app(slot, hooks, settings)
    # SIGTERM: uvicorn stops accepting and drains in-flight requests for up to drain_seconds;
    # streams still running near the end are cut with an error frame (Generations.begin_drain).
    server = uvicorn.Config(
        app,
        host=ns.host,
        port=ns.port,
        log_config=None,  # keep our JSON handler
        access_log=False,  # the ingress logs each request itself, with its id
        timeout_graceful_shutdown=int(settings.drain_seconds),
        timeout_keep_alive=int(settings.keep_alive_s),
        http=head_deadline_protocol(settings.header_timeout_s),
    )
    DrainingServer(server, app.state.generations).run()


class DrainingServer(uvicorn.Server):
    """uvicorn's server, telling the ingress when SIGTERM starts the drain."""

    def __init__(self, config: uvicorn.Config, generations: Generations) -> None:
        super().__init__(config)
        self.generations = generations

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.generations.begin_drain()
        super().handle_exit(sig, frame)


if __name__ == "__main__":  # vLLM spawns processes: the guard is required
    main()
