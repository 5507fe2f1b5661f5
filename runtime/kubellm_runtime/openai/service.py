"""OpenAI serving logic: model/adapter selection, limits, prompt rendering, responses, streams."""

from __future__ import annotations

import asyncio
import contextvars
import time
import uuid
from collections.abc import AsyncGenerator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, TypeVar

from kubellm_runtime import metrics
from kubellm_runtime.engine.base import (
    Chunk,
    Engine,
    EngineError,
    GenerationRequest,
    RequestRejectedError,
    Sampling,
    Structured,
    TokenLogprob,
    UnknownAdapterError,
)
from kubellm_runtime.logs import annotate
from kubellm_runtime.openai.errors import ApiError
from kubellm_runtime.openai.protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    ModelCard,
    ModelList,
    SamplingFields,
)
from kubellm_runtime.openai.tools import ToolUse, tool_use

# Prompts longer than this are rendered and tokenized on one worker thread, off the event loop
# (a 20 MB prompt took 15 s: /health and every stream would stall); shorter ones inline, where
# the thread hop would cost more than the work.
INLINE_CHARS = 16_384
_TOKENIZER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kubellm-tokenize")
T = TypeVar("T")


async def off_loop(size: int, fn: Callable[..., T], *args: Any) -> T:
    if size <= INLINE_CHARS:
        return fn(*args)
    call = contextvars.copy_context().run
    return await asyncio.get_running_loop().run_in_executor(_TOKENIZER, call, fn, *args)


@dataclass
class Collected:
    """A whole answer: text, finish reason and log-probabilities per choice."""

    texts: dict[int, str]
    reasons: dict[int, str | None]
    logprobs: dict[int, list[TokenLogprob]]
    tokens: int = 0


@dataclass(frozen=True)
class Prepared:
    """A validated request, ready for the engine."""

    request_id: str
    model: str
    adapter: str | None
    prompt: str
    prompt_token_ids: tuple[int, ...]
    sampling: Sampling
    include_usage: bool
    tools: ToolUse | None = None
    """How the answer is read for tool calls (None: plain text)."""


class OpenAIService:
    """Turns OpenAI requests into engine requests and engine chunks into OpenAI responses."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        metrics.ENGINE_ERRORS.labels(engine.model_name)  # exists at zero before any error

    def models(self) -> ModelList:
        created = int(time.time())
        base = self.engine.model_name
        cards = [ModelCard(id=base, created=created)]
        cards += [ModelCard(id=a, created=created, parent=base) for a in self.engine.adapters()]
        return ModelList(data=cards)

    def _adapter_for(self, model: str) -> str | None:
        if model == self.engine.model_name:
            return None
        if model in self.engine.adapters():
            return model
        raise ApiError(
            404, f"The model `{model}` does not exist.", param="model", code="model_not_found"
        )

    async def prepare(
        self,
        request: SamplingFields,
        prompt: str,
        max_tokens: int | None,
        cap: int | None = None,
        *,
        chat: bool = False,
        clamp: bool = False,
        tools: ToolUse | None = None,
    ) -> Prepared:
        """Validated engine input. No max_tokens: the rest of the context, at most ``cap``.

        The prompt is tokenized once, here: a rendered chat prompt without special tokens (its
        template wrote them), a completion prompt with them, as vLLM's own server does. The
        caller has admitted the request already; a long prompt is tokenized off the loop.
        """
        annotate(model=self.engine.model_name)
        adapter = self._adapter_for(request.model)
        annotate(adapter=adapter)
        prompt_token_ids = tuple(
            await off_loop(len(prompt), self.engine.tokenize, prompt, not chat)
        )
        prompt_tokens = len(prompt_token_ids)
        limit = self.engine.max_model_len
        room = limit - prompt_tokens
        if max_tokens is None:
            max_tokens = max(1, min(room, cap or room))
        elif clamp and room >= 1:
            max_tokens = min(max_tokens, room)  # the compatibility routes: a ceiling
        if room < 1 or max_tokens > room:
            raise ApiError(
                400,
                f"This model's maximum context length is {limit} tokens. However, you requested "
                f"{prompt_tokens + max_tokens} tokens ({prompt_tokens} in the prompt, "
                f"{max_tokens} in the completion). Reduce the prompt or max_tokens.",
                param="max_tokens",
                code="context_length_exceeded",
            )
        sampling = Sampling(
            max_tokens=max_tokens,
            temperature=request.temperature,
            top_p=request.top_p,
            stop=request.stops(),
            seed=request.seed,
            n=request.n,
            presence_penalty=request.presence_penalty,
            frequency_penalty=request.frequency_penalty,
            logit_bias=request.bias(),
            logprobs=_wanted_logprobs(request),
            structured=tools.structured() if tools else _structured(request),
        )
        try:
            self.engine.supports(sampling)
        except RequestRejectedError as exc:
            raise ApiError(400, str(exc), param=exc.param) from exc
        return Prepared(
            request_id=f"{uuid.uuid4().hex}",
            model=request.model,
            adapter=adapter,
            prompt=prompt,
            prompt_token_ids=prompt_token_ids,
            sampling=sampling,
            include_usage=bool(request.stream_options and request.stream_options.include_usage),
            tools=tools,
        )

    async def prepare_chat(
        self, request: ChatCompletionRequest, cap: int | None = None, *, clamp: bool = False
    ) -> Prepared:
        tools = tool_use(
            request.tools,
            request.tool_choice,
            has_format=request.response_format is not None,
            parses=self.engine.parses_tools(),
            parallel=request.parallel_tool_calls is not False,
        )
        messages = [m.for_template() for m in request.messages]
        size = sum(len(m["content"]) for m in messages)
        prompt = await off_loop(
            size, self.engine.render_chat, messages, tools.tools if tools else None
        )
        limit = request.max_completion_tokens or request.max_tokens
        return await self.prepare(request, prompt, limit, cap, chat=True, clamp=clamp, tools=tools)

    async def prepare_completion(
        self, request: CompletionRequest, cap: int | None = None, *, clamp: bool = False
    ) -> list[Prepared]:
        return [
            await self.prepare(request, p, request.max_tokens, cap, clamp=clamp)
            for p in request.prompts()
        ]

    async def run(self, prepared: Prepared, stream: bool = True) -> AsyncGenerator[Chunk, None]:
        """The engine's chunks; aborts the engine request if the consumer goes away.

        ``stream=False``: the caller wants the final text only, and the engine may send it in
        one chunk per choice (vLLM then skips a wake-up per token); token timings are only
        observed for streams.
        """
        request = GenerationRequest(
            request_id=prepared.request_id,
            prompt=prepared.prompt,
            sampling=prepared.sampling,
            adapter=prepared.adapter,
            stream=stream,
            prompt_token_ids=prepared.prompt_token_ids,
        )
        finished = False
        last = time.perf_counter()
        phase = "first_token"
        produced: dict[int, int] = {}
        try:
            async for chunk in self.engine.generate(request):
                if stream:
                    now = time.perf_counter()
                    metrics.LATENCY.labels(phase).observe(now - last)
                    last, phase = now, "inter_token"
                produced[chunk.index] = chunk.completion_tokens
                yield chunk
            finished = True
        except UnknownAdapterError as exc:
            raise ApiError(
                404, f"The model `{exc.args[0]}` does not exist.", param="model"
            ) from exc
        except RequestRejectedError as exc:
            raise ApiError(400, str(exc), param=exc.param) from exc
        except EngineError:
            metrics.ENGINE_ERRORS.labels(prepared.model).inc()
            raise
        finally:
            metrics.TOKENS.labels(prepared.model).inc(sum(produced.values()))
            if not finished:
                # The client went away (or timed out): stop spending engine time on it.
                await self.engine.abort(prepared.request_id)

    async def collect(self, prepared: Prepared) -> Collected:
        n = prepared.sampling.n
        done = Collected(
            {i: "" for i in range(n)}, dict.fromkeys(range(n)), {i: [] for i in range(n)}
        )
        tokens: dict[int, int] = {}
        async with aclosing(self.run(prepared, stream=False)) as chunks:
            async for chunk in chunks:
                done.texts[chunk.index] += chunk.text
                done.logprobs[chunk.index] += chunk.logprobs
                tokens[chunk.index] = chunk.completion_tokens
                if chunk.finish_reason:
                    done.reasons[chunk.index] = chunk.finish_reason
        done.tokens = sum(tokens.values())
        return done


def _wanted_logprobs(request: SamplingFields) -> int | None:
    if isinstance(request, ChatCompletionRequest):
        return request.wanted_logprobs()
    if isinstance(request, CompletionRequest):
        return request.logprobs
    return None


def _structured(request: SamplingFields) -> Structured | None:
    fmt = request.response_format if isinstance(request, ChatCompletionRequest) else None
    if fmt is None or fmt.type == "text":
        return None
    return Structured(fmt.type, fmt.schema_text())
