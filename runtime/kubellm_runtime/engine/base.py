"""The engine protocol the serving layer talks to, and the values that cross it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

FinishReason = Literal["stop", "length", "abort"]


class EngineError(Exception):
    """The engine failed a request (not the caller's fault): a 503 with Retry-After."""


class RequestRejectedError(Exception):
    """The engine refused the request as invalid (the caller's fault): a 400."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class UnknownAdapterError(KeyError):
    """A request named an adapter the engine does not serve."""


class InvalidEngineArgsError(ValueError):
    """An engine argument (``engine.extraArgs``) its engine's own parser refuses, named."""


class AdapterLoadError(Exception):
    """An adapter could not be loaded (unreadable, malformed, incompatible): a 400."""


@dataclass(frozen=True)
class Structured:
    """Constrained output: any JSON object, or JSON matching ``schema`` (JSON text)."""

    kind: Literal["json_object", "json_schema"]
    schema: str | None = None


@dataclass(frozen=True)
class Sampling:
    """Sampling options of one request, already validated by the serving layer."""

    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    n: int = 1
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: tuple[tuple[int, float], ...] = ()
    logprobs: int | None = None
    """None: none; k: each sampled token's log-probability and the k likeliest."""
    structured: Structured | None = None


@dataclass(frozen=True)
class TokenLogprob:
    """One sampled token: its text, log-probability and the likeliest alternatives."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class GenerationRequest:
    request_id: str
    prompt: str
    sampling: Sampling
    adapter: str | None = None
    stream: bool = True
    """False: only the final text is wanted; an engine may send it as one chunk per choice."""
    prompt_token_ids: tuple[int, ...] = ()
    """The prompt as the serving layer tokenized it (engines use it instead of re-tokenizing)."""


@dataclass(frozen=True)
class ToolCall:
    """A function the model calls: its name and its arguments as JSON text."""

    name: str
    arguments: str


@dataclass(frozen=True)
class ParsedTools:
    """An answer read for tool calls: the text left (None if all of it was calls)."""

    content: str | None
    calls: tuple[ToolCall, ...]


@dataclass(frozen=True)
class Chunk:
    """New text of one choice; the last chunk of a choice carries its finish reason."""

    index: int
    text: str
    completion_tokens: int
    finish_reason: FinishReason | None = None
    logprobs: tuple[TokenLogprob, ...] = ()
    """The new tokens' log-probabilities, when the request asked for them."""


class Engine(Protocol):
    """What the serving layer needs from an engine."""

    @property
    def model_name(self) -> str: ...

    @property
    def max_model_len(self) -> int: ...

    def ready(self) -> bool: ...

    def render_chat(
        self, messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]] | None = None
    ) -> str:
        """The model's chat template, ending where the assistant's turn begins; ``tools`` in
        OpenAI's shape, for templates that take them."""

    def parses_tools(self) -> bool:
        """Whether this deployment reads tool calls from free text (a tool-call parser)."""

    def tool_calls(self, text: str, tools: Sequence[dict[str, Any]]) -> ParsedTools:
        """The calls in ``text`` by the deployment's tool-call parser."""

    def tokenize(self, text: str, special_tokens: bool) -> list[int]:
        """Token ids of ``text``; ``special_tokens`` adds BOS and the like (completions do,
        rendered chat prompts do not: their template already wrote them)."""

    def supports(self, sampling: Sampling) -> None:
        """Raise RequestRejectedError naming an option this engine cannot honour (checked
        before a response starts, so a stream never begins with an impossible request)."""

    def generate(self, request: GenerationRequest) -> AsyncIterator[Chunk]: ...

    async def abort(self, request_id: str) -> None: ...

    def adapters(self) -> list[str]: ...

    async def add_adapter(self, name: str, path: str) -> None: ...

    async def remove_adapter(self, name: str) -> None: ...

    async def shutdown(self) -> None: ...
