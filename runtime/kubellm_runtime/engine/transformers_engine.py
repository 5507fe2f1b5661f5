"""A transformers engine for machines where vLLM cannot run (no supported accelerator or build).

One generation at a time per replica (requests queue on a lock; the admission limit still
answers 429 beyond it), greedy or sampled decoding with ``model.generate``, tokens streamed
from the generation thread to the event loop, and LoRA adapters through PEFT. Its purpose is
to keep a model serving anywhere, not throughput: use vLLM where it runs.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing, nullcontext
from pathlib import Path
from typing import Any

import structlog
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, StoppingCriteria, set_seed
from transformers.generation.streamers import BaseStreamer

from kubellm_runtime.contract import ServeArgs
from kubellm_runtime.engine import templates
from kubellm_runtime.engine.base import (
    AdapterLoadError,
    Chunk,
    EngineError,
    FinishReason,
    GenerationRequest,
    ParsedTools,
    RequestRejectedError,
    Sampling,
    UnknownAdapterError,
)
from kubellm_runtime.engine.text import TextStream

log = structlog.get_logger(__name__)
_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
_END = object()


class _Tokens(BaseStreamer):
    """Hands each new token id from the generation thread to the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[Any]) -> None:
        self._loop, self._queue, self._prompt_seen = loop, queue, False

    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_seen:  # generate() first puts the prompt itself
            self._prompt_seen = True
            return
        self._loop.call_soon_threadsafe(self._queue.put_nowait, value.reshape(-1).tolist())

    def end(self) -> None:
        self._loop.call_soon_threadsafe(self._queue.put_nowait, _END)


class _Halted(StoppingCriteria):
    """Ends generate() between two tokens once any of the flags is set."""

    def __init__(self, *flags: threading.Event) -> None:
        self._flags = flags

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **_: Any) -> torch.Tensor:
        done = any(flag.is_set() for flag in self._flags)
        return torch.full((input_ids.shape[0],), done, dtype=torch.bool)


def supported(s: Sampling) -> None:
    """What this fallback cannot do is refused by name, never silently ignored."""
    unsupported = {
        "logprobs": s.logprobs is not None,
        "response_format": s.structured is not None,
        "logit_bias": bool(s.logit_bias),
        "presence_penalty": s.presence_penalty != 0,
        "frequency_penalty": s.frequency_penalty != 0,
    }
    for param, asked in unsupported.items():
        if asked:
            raise RequestRejectedError(
                f"{param}: not supported by the transformers backend (use vllm)", param
            )


class TransformersEngine:
    """Engine protocol over a transformers causal LM (+ PEFT adapters)."""

    def __init__(self, model: Any, tokenizer: Any, served_name: str, max_model_len: int) -> None:
        self._model, self._tokenizer = model, tokenizer
        self._served_name, self._max_model_len = served_name, max_model_len
        self._adapters: dict[str, str] = {}
        self._lock = asyncio.Lock()
        self._cancel: dict[str, threading.Event] = {}

    @classmethod
    def start(cls, args: ServeArgs, model_path: str) -> TransformersEngine:
        device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = _DTYPES.get(args.model.dtype, "auto")
        log.info("loading model", engine="transformers", path=model_path, device=device)
        tokenizer = AutoTokenizer.from_pretrained(
            model_path, trust_remote_code=args.model.trust_remote_code
        )
        model: Any = AutoModelForCausalLM.from_pretrained(
            model_path, dtype=dtype, trust_remote_code=args.model.trust_remote_code
        )
        model = model.to(device).eval()
        limit = args.model.max_model_len or int(model.config.max_position_embeddings)
        log.info("model loaded", engine="transformers", model=args.model.served_name)
        return cls(model, tokenizer, args.model.served_name, limit)

    @property
    def model_name(self) -> str:
        return self._served_name

    @property
    def max_model_len(self) -> int:
        return self._max_model_len

    def ready(self) -> bool:
        return True

    def render_chat(
        self, messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]] | None = None
    ) -> str:
        return templates.render_chat(self._tokenizer, messages, tools)

    def parses_tools(self) -> bool:
        return False  # no tool-call parser on this fallback

    def tool_calls(self, text: str, tools: Sequence[dict[str, Any]]) -> ParsedTools:
        return ParsedTools(text, ())

    def tokenize(self, text: str, special_tokens: bool) -> list[int]:
        return templates.tokenize(self._tokenizer, text, special_tokens)

    def supports(self, sampling: Sampling) -> None:
        supported(sampling)

    async def generate(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        if request.adapter is not None and request.adapter not in self._adapters:
            raise UnknownAdapterError(request.adapter)
        aborted = self._cancel.setdefault(request.request_id, threading.Event())
        try:
            async with self._lock:
                for index in range(request.sampling.n):
                    async with aclosing(self._one(request, index, aborted)) as choice:
                        async for chunk in choice:
                            yield chunk
                    if aborted.is_set():
                        return
        finally:
            self._cancel.pop(request.request_id, None)

    async def _one(
        self, request: GenerationRequest, index: int, aborted: threading.Event
    ) -> AsyncGenerator[Chunk, None]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        halt = threading.Event()  # this choice is done (stop string, or its reader went away)
        s = request.sampling
        ids = list(request.prompt_token_ids) or self.tokenize(request.prompt, special_tokens=True)
        tensor = torch.tensor([ids], device=self._model.device)
        inputs = {"input_ids": tensor, "attention_mask": torch.ones_like(tensor)}
        options: dict[str, Any] = {"max_new_tokens": s.max_tokens, "do_sample": s.temperature > 0}
        if s.temperature > 0:
            options.update(temperature=s.temperature, top_p=s.top_p)
        stream = TextStream(
            lambda ids: str(self._tokenizer.decode(ids, skip_special_tokens=True)), s.stop
        )
        failure: list[BaseException] = []

        def run() -> None:
            if s.seed is not None:
                set_seed(s.seed + index)
            try:
                with torch.inference_mode(), self._adapter_context(request.adapter):
                    self._model.generate(
                        **inputs,
                        **options,
                        streamer=_Tokens(loop, queue),
                        stopping_criteria=[_Halted(aborted, halt)],
                        pad_token_id=self._tokenizer.pad_token_id or self._tokenizer.eos_token_id,
                    )
            except Exception as exc:  # surfaced to the caller as an engine error
                failure.append(exc)
                loop.call_soon_threadsafe(queue.put_nowait, _END)

        worker = asyncio.create_task(asyncio.to_thread(run))
        produced = 0
        try:
            while (ids := await queue.get()) is not _END:
                produced += len(ids)
                delta, stopped = stream.push(ids)
                if stopped:
                    yield Chunk(index, delta, produced, "stop")
                    return
                if delta:
                    yield Chunk(index, delta, produced)
            if failure:
                raise EngineError(f"{type(failure[0]).__name__}: {failure[0]}")
            reason: FinishReason = (
                "abort" if aborted.is_set() else "length" if produced >= s.max_tokens else "stop"
            )
            yield Chunk(index, stream.flush(), produced, reason)
        finally:
            halt.set()
            await worker

    def _adapter_context(self, adapter: str | None) -> Any:
        if not self._adapters:
            return nullcontext()
        if adapter is None:
            return self._model.disable_adapter()
        self._model.set_adapter(adapter)
        return nullcontext()

    async def abort(self, request_id: str) -> None:
        flag = self._cancel.get(request_id)
        if flag is not None:
            flag.set()

    def adapters(self) -> list[str]:
        return sorted(self._adapters)

    async def add_adapter(self, name: str, path: str) -> None:
        async with self._lock:
            try:
                await asyncio.to_thread(self._load_adapter, name, path)
            except Exception as exc:  # PEFT raises many kinds for a bad adapter
                raise AdapterLoadError(f"cannot load adapter {name!r} from {path}: {exc}") from exc
        self._adapters[name] = path

    def _load_adapter(self, name: str, path: str) -> None:
        from peft import PeftModel  # noqa: PLC0415 - only when an adapter is used

        if not (Path(path) / "adapter_config.json").is_file():
            raise AdapterLoadError(f"{path} has no adapter_config.json")
        if isinstance(self._model, PeftModel):
            self._model.load_adapter(path, adapter_name=name)
        else:
            self._model = PeftModel.from_pretrained(self._model, path, adapter_name=name)

    async def remove_adapter(self, name: str) -> None:
        if name not in self._adapters:
            raise UnknownAdapterError(name)
        async with self._lock:
            self._model.delete_adapter(name)
            if len(self._adapters) == 1:
                # PEFT cannot generate with no adapter left: back to the plain base model.
                self._model = self._model.unload()
        del self._adapters[name]

    async def shutdown(self) -> None:
        for flag in self._cancel.values():
            flag.set()
