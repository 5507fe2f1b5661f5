"""A zero-cost engine: deterministic words, no model. For unit tests and the stack's ceiling."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from kubellm_runtime.engine.base import (
    AdapterLoadError,
    Chunk,
    GenerationRequest,
    ParsedTools,
    Sampling,
    TokenLogprob,
    ToolCall,
    UnknownAdapterError,
)

RECENT = 256  # requests the engine remembers (for tests): it must not grow per request
WORDS = ("lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit")


def _logprobs(request: GenerationRequest, delta: str) -> tuple[TokenLogprob, ...]:
    """A fixed log-probability per word, with the next words as the alternatives."""
    k = request.sampling.logprobs
    if k is None:
        return ()
    top = tuple((w, -1.0 - rank) for rank, w in enumerate((delta, *WORDS)[:k]))
    return (TokenLogprob(delta, -1.0, top),)


class FakeEngine:
    """Emits ``max_tokens`` words (one per token), honouring stop strings and aborts."""

    def __init__(
        self,
        model_name: str = "fake-model",
        max_model_len: int = 2048,
        adapters: Sequence[str] = (),
        token_delay: float = 0.0,
        tool_parser: bool = False,
    ) -> None:
        self._model_name = model_name
        self._max_model_len = max_model_len
        self._adapters = list(adapters)
        self.token_delay = token_delay
        self.tool_parser = tool_parser
        self.aborted: set[str] = set()
        self.started: list[GenerationRequest] = []

    @property
    def model_name(self) -> str:
        return self._model_name

    @property
    def max_model_len(self) -> int:
        return self._max_model_len

    def ready(self) -> bool:
        return True

    def render_chat(
        self, messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]] | None = None
    ) -> str:
        names = ",".join(t["function"]["name"] for t in tools or ())
        head = f"<|tools|>{names}\n" if names else ""
        body = "".join(f"<|{m['role']}|>{m.get('content') or ''}\n" for m in messages)
        return head + body + "<|assistant|>"

    def parses_tools(self) -> bool:
        return self.tool_parser

    def tool_calls(self, text: str, tools: Sequence[dict[str, Any]]) -> ParsedTools:
        """The fake parser: a line ``CALL name {json}`` is a call."""
        calls = [line.split(" ", 2) for line in text.splitlines() if line.startswith("CALL ")]
        found = tuple(ToolCall(c[1], c[2] if len(c) > 2 else "{}") for c in calls)  # noqa: PLR2004
        rest = "\n".join(line for line in text.splitlines() if not line.startswith("CALL "))
        return ParsedTools(rest or None, found) if found else ParsedTools(text, ())

    def tokenize(self, text: str, special_tokens: bool) -> list[int]:
        """One id per word (1, 2, ...), after a 0 standing for BOS when special tokens are on."""
        return [0] * special_tokens + list(range(1, len(text.split()) + 1))

    def supports(self, sampling: Sampling) -> None:
        return None  # every option (vLLM checks a schema when the request starts)

    async def generate(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        if request.adapter is not None and request.adapter not in self._adapters:
            raise UnknownAdapterError(request.adapter)
        self.started.append(request)
        del self.started[:-RECENT]
        for index in range(request.sampling.n):
            text = ""
            for produced in range(1, request.sampling.max_tokens + 1):
                if request.request_id in self.aborted:
                    yield Chunk(index, "", produced - 1, "abort")
                    return
                if self.token_delay:
                    await asyncio.sleep(self.token_delay)
                word = WORDS[(produced - 1 + index) % len(WORDS)]
                delta = word if not text else f" {word}"
                stop = next((s for s in request.sampling.stop if s in text + delta), None)
                if stop is not None:
                    cut = (text + delta).index(stop)
                    yield Chunk(index, (text + delta)[len(text) : cut], produced, "stop")
                    break
                text += delta
                last = produced == request.sampling.max_tokens
                yield Chunk(
                    index, delta, produced, "length" if last else None, _logprobs(request, delta)
                )

    async def abort(self, request_id: str) -> None:
        if len(self.aborted) >= RECENT:
            self.aborted.pop()
        self.aborted.add(request_id)

    def adapters(self) -> list[str]:
        return list(self._adapters)

    async def add_adapter(self, name: str, path: str) -> None:
        if not (Path(path) / "adapter_config.json").is_file():
            raise AdapterLoadError(f"{path} has no adapter_config.json")
        self._adapters.append(name)

    async def remove_adapter(self, name: str) -> None:
        if name not in self._adapters:
            raise UnknownAdapterError(name)
        self._adapters.remove(name)

    async def shutdown(self) -> None:
        return None
