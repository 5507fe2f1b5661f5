"""OpenAI-compatible wire models (requests validated strictly, responses as the SDK expects)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kubellm_runtime.openai.wire import ClientModel, Flag, Integer, Number

MAX_STOP = 4
SEED_RANGE = 2**63  # the engines' generators take a signed 64-bit seed


class _Request(ClientModel):
    # Clients send fields we do not use (user, logprobs, ...): accepted and ignored.
    model_config = ConfigDict(extra="ignore")


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
    content: str


class ChatCompletionRequest(SamplingFields):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: Integer | None = Field(default=None, ge=1)


MAX_PROMPTS = 256  # prompts in one /v1/completions batch (each takes an admission slot)


class CompletionRequest(SamplingFields):
    prompt: str | list[str]

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
    content: str


class ChatChoice(BaseModel):
    index: int
    message: ResponseMessage
    finish_reason: str | None


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


class ChatChunkChoice(BaseModel):
    index: int
    delta: DeltaMessage
    finish_reason: str | None = None


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


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


class LoadLoraRequest(_Request):
    """POST /v1/load_lora_adapter (vLLM's body)."""

    lora_name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
    lora_path: str = Field(min_length=1)


class UnloadLoraRequest(_Request):
    """POST /v1/unload_lora_adapter"""

    lora_name: str = Field(min_length=1)
