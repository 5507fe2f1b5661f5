"""Request bodies of the compatibility routes (validated strictly, with clear 400s)."""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field

from kubellm_runtime.openai.protocol import ChatMessage
from kubellm_runtime.openai.wire import ClientModel, Flag, Integer, Number

# Unset max_tokens / tokens_limit: as the original services did, up to this many tokens, fewer
# where the model's context leaves less room.
DEFAULT_MAX_TOKENS = 256
Text = Annotated[str, Field(min_length=1)]


class _Body(ClientModel):
    model_config = ConfigDict(extra="forbid")


class ChatBody(_Body):
    """POST /chat"""

    prompt: str = Field(min_length=1)
    max_tokens: Integer | None = Field(default=None, ge=1)
    temperature: Number = Field(default=0.7, ge=0, le=2)
    adapter: str | None = None
    adapter_path: str | None = Field(default=None, min_length=1, max_length=2048)
    """An adapter source to use for this request: loaded on demand, only from the
    deployment's allowed prefixes (spec.adapterSources)."""


class VllmGenerateBody(_Body):
    """POST /generate_vllm: the body of vLLM's demo server (prompt + sampling options);
    the answer's texts repeat the prompt, as that server's do."""

    prompt: str = Field(min_length=1)
    stream: Flag = False
    max_tokens: Integer = Field(default=16, ge=1)
    temperature: Number = Field(default=1.0, ge=0, le=2)
    top_p: Number = Field(default=1.0, gt=0, le=1)
    n: Integer = Field(default=1, ge=1, le=16)
    stop: list[Text] = Field(default_factory=list, max_length=4)
    seed: Integer | None = None


class BasicGenerateBody(_Body):
    """POST /basic_generate: a prompt in, its continuation out."""

    prompt: str = Field(min_length=1)
    max_tokens: Integer | None = Field(default=None, ge=1)
    temperature: Number = Field(default=0.7, ge=0, le=2)


class BatchGenerateBody(_Body):
    """POST /generate with a batch: one result per prompt, in order."""

    prompts: list[Text] = Field(min_length=1, max_length=256)
    max_tokens: Integer | None = Field(default=None, ge=1)
    temperature: Number = Field(default=0.7, ge=0, le=2)
    adapter: str | None = None


class StreamBody(_Body):
    """POST /generate_stream"""

    prompt: str = Field(min_length=1)
    max_tokens: Integer | None = Field(default=None, ge=1)
    temperature: Number = Field(default=0.7, ge=0, le=2)
    adapter: str | None = None


class JobMeta(_Body):
    """Sampling options of a job-keyed request."""

    temperature: Number = Field(default=0.7, ge=0, le=2)
    tokens_limit: Integer | None = Field(default=None, ge=1)
    stop_words: list[Text] = Field(default_factory=list, max_length=4)
    model: str | None = None


class JobGenerateBody(_Body):
    """POST /generate keyed by a client job_id: generated once, the stored result after."""

    job_id: str = Field(min_length=1, max_length=256)
    meta: JobMeta = JobMeta()
    content: str = Field(min_length=1)


class JobChatBody(_Body):
    """POST /chat_completion keyed by a client job_id."""

    job_id: str = Field(min_length=1, max_length=256)
    meta: JobMeta = JobMeta()
    messages: list[ChatMessage] = Field(min_length=1)
