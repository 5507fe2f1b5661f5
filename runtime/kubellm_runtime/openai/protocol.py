"""OpenAI-compatible wire models (requests validated strictly, responses as the SDK expects)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kubellm_runtime.openai.logprobs import ChatLogprobs, CompletionLogprobs
from kubellm_runtime.openai.options import (
    MAX_TOOLS,
    ResponseFormat,
    TextPart,
    Tool,
    ToolCallIn,
    logit_bias_of,
)
from kubellm_runtime.openai.tools import ToolCallDelta, ToolCallOut
from kubellm_runtime.openai.wire import ClientModel, Flag, Integer, Number

MAX_STOP = 4
SEED_RANGE = 2**63  # the engines' generators take a signed 64-bit seed


class _Request(ClientModel):
    # Fields no OpenAI API has are ignored (clients add their own); the OpenAI parameters the
    # runtime does not implement are declared below and refused by name.
    model_config = ConfigDict(extra="ignore")


def _refused(value: object, name: str, why: str) -> None:
    if value not in (None, False):
        raise ValueError(f"{name}: {why}")


class StreamOptions(_Request):
    include_usage: Flag = False


class SamplingFields(_Request):
    model: str = Field(min_length=1)
    temperature: Number = Field(default=1.0, ge=0, le=2)
    top_p: Number = Field(default=1.0, gt=0, le=1)
    n: Integer = Field(default=1, ge=1, le=16)
    max_tokens: Integer | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    seed: Integer | None = Field(default=None, ge=-SEED_RANGE, lt=SEED_RANGE)
    stream: Flag = False
    stream_options: StreamOptions | None = None
    presence_penalty: Number = Field(default=0.0, ge=-2, le=2)
    frequency_penalty: Number = Field(default=0.0, ge=-2, le=2)
    logit_bias: dict[str, Number] | None = None
    user: str | None = Field(default=None, max_length=256)
    """The end user's id (OpenAI's abuse tracing): accepted, not used."""

    @field_validator("logit_bias")
    @classmethod
    def _bias(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        logit_bias_of(value)
        return value

    def bias(self) -> tuple[tuple[int, float], ...]:
        return logit_bias_of(self.logit_bias)

    @field_validator("stop")
    @classmethod
    def _stops(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > MAX_STOP:
            raise ValueError(f"at most {MAX_STOP} stop sequences")
        if value == "" or (isinstance(value, list) and "" in value):
            raise ValueError("a stop sequence must not be empty")
        return value

    @model_validator(mode="after")
    def _choices_can_differ(self) -> SamplingFields:
        if self.n > 1 and self.temperature == 0:
            raise ValueError("n: more than one choice needs temperature > 0 (greedy is one)")
        return self

    def stops(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)


class ChatMessage(_Request):
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[TextPart] | None = None
    """Text, or OpenAI's list of parts (text parts; other kinds are refused by type). None
    only on an assistant turn that called tools."""
    name: str | None = Field(default=None, max_length=64)
    tool_calls: list[ToolCallIn] | None = Field(default=None, max_length=MAX_TOOLS)
    tool_call_id: str | None = Field(default=None, max_length=256)

    @field_validator("content", mode="before")
    @classmethod
    def _text_parts_only(cls, value: object) -> object:
        for part in value if isinstance(value, list) else ():
            kind = part.get("type") if isinstance(part, dict) else None
            if kind != "text":
                raise ValueError(f"content part of type {kind!r}: this model reads text parts only")
        return value

    @model_validator(mode="after")
    def _has_content(self) -> ChatMessage:
        if self.content is None and not (self.role == "assistant" and self.tool_calls):
            raise ValueError("content: required (but on an assistant turn with tool_calls)")
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("tool_call_id: required on a tool message")
        return self

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(part.text for part in self.content)  # as vLLM joins text parts

    def for_template(self) -> dict[str, Any]:
        """The message as chat templates take it (a call's arguments as an object)."""
        message: dict[str, Any] = {"role": self.role, "content": self.text()}
        if self.tool_calls:
            message["tool_calls"] = [c.for_template() for c in self.tool_calls]
        if self.tool_call_id:
            message["tool_call_id"] = self.tool_call_id
        if self.name:
            message["name"] = self.name
        return message


MAX_TOP_LOGPROBS = 20


class ChatCompletionRequest(SamplingFields):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: Integer | None = Field(default=None, ge=1)
    logprobs: Flag = False
    top_logprobs: Integer | None = Field(default=None, ge=0, le=MAX_TOP_LOGPROBS)
    response_format: ResponseFormat | None = None
    tools: list[Tool] | None = Field(default=None, max_length=MAX_TOOLS)
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = None
    parallel_tool_calls: Flag | None = None
    functions: list[dict[str, Any]] | None = None
    function_call: str | dict[str, Any] | None = None

    @model_validator(mode="after")
    def _options(self) -> ChatCompletionRequest:
        if self.top_logprobs is not None and not self.logprobs:
            raise ValueError("top_logprobs: needs logprobs: true")
        _refused(self.functions, "functions", "deprecated by OpenAI: send tools instead")
        _refused(self.function_call, "function_call", "deprecated by OpenAI: send tool_choice")
        return self

    def wanted_logprobs(self) -> int | None:
        return (self.top_logprobs or 0) if self.logprobs else None


MAX_PROMPTS = 256  # prompts in one /v1/completions batch (each takes an admission slot)


MAX_COMPLETION_LOGPROBS = 5


class CompletionRequest(SamplingFields):
    prompt: str | list[str]
    logprobs: Integer | None = Field(default=None, ge=0, le=MAX_COMPLETION_LOGPROBS)
    echo: Flag = False
    suffix: str | None = None
    best_of: Integer | None = None

    @model_validator(mode="after")
    def _options(self) -> CompletionRequest:
        _refused(self.echo, "echo", "not supported by this runtime")
        _refused(self.suffix, "suffix", "not supported by this runtime (no insertion models)")
        if self.best_of not in (None, 1):
            raise ValueError("best_of: not supported (vLLM dropped it): send n instead")
        return self

    @field_validator("prompt")
    @classmethod
    def _not_empty(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list) and not value:
            raise ValueError("prompt must not be an empty list")
        if isinstance(value, list) and len(value) > MAX_PROMPTS:
            raise ValueError(f"at most {MAX_PROMPTS} prompts in one request")
        if value == "" or (isinstance(value, list) and "" in value):
            raise ValueError("a prompt must not be empty")
        return value

    def prompts(self) -> list[str]:
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)


class UsageInfo(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ResponseMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    tool_calls: list[ToolCallOut] | None = None


class ChatChoice(BaseModel):
    index: int
    message: ResponseMessage
    finish_reason: str | None
    logprobs: ChatLogprobs | None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: UsageInfo


class DeltaMessage(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[ToolCallDelta] | None = None


class ChatChunkChoice(BaseModel):
    index: int
    delta: DeltaMessage
    finish_reason: str | None = None
    logprobs: ChatLogprobs | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: UsageInfo | None = None


class CompletionChoice(BaseModel):
    index: int
    text: str
    finish_reason: str | None = None
    logprobs: CompletionLogprobs | None = None


class Completion(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: UsageInfo | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "kubellm"
    parent: str | None = None


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class LoadLoraRequest(_Request):
    """POST /v1/load_lora_adapter (vLLM's body)."""

    lora_name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
    lora_path: str = Field(min_length=1)


class UnloadLoraRequest(_Request):
    """POST /v1/unload_lora_adapter"""

    lora_name: str = Field(min_length=1)
