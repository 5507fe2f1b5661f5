"""OpenAI's answers from engine output: whole completions and their streams (SSE frames)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import aclosing

from kubellm_runtime.engine.base import Chunk
from kubellm_runtime.openai.logprobs import ChatLogprobs, chat_logprobs, completion_logprobs
from kubellm_runtime.openai.protocol import (
    ChatChoice,
    ChatChunkChoice,
    ChatCompletion,
    ChatCompletionChunk,
    Completion,
    CompletionChoice,
    DeltaMessage,
    ResponseMessage,
    UsageInfo,
)
from kubellm_runtime.openai.service import OpenAIService, Prepared
from kubellm_runtime.openai.sse import DONE, sse
from kubellm_runtime.openai.tools import tool_call_deltas, tool_calls_out


async def chat(service: OpenAIService, prepared: Prepared) -> ChatCompletion:
    done = await service.collect(prepared)
    wanted = prepared.sampling.logprobs is not None
    return ChatCompletion(
        id=f"chatcmpl-{prepared.request_id}",
        created=int(time.time()),
        model=prepared.model,
        choices=[
            _choice(
                _message(service, prepared, done.texts[i]),
                i,
                done.reasons[i],
                chat_logprobs(done.logprobs[i]) if wanted else None,
            )
            for i in sorted(done.texts)
        ],
        usage=_usage(len(prepared.prompt_token_ids), done.tokens),
    )


async def chat_stream(service: OpenAIService, prepared: Prepared) -> AsyncIterator[str]:
    created = int(time.time())
    ident = f"chatcmpl-{prepared.request_id}"

    def frame(choices: list[ChatChunkChoice], usage: UsageInfo | None = None) -> str:
        chunk = ChatCompletionChunk(
            id=ident, created=created, model=prepared.model, choices=choices, usage=usage
        )
        return sse(chunk.model_dump_json(exclude_none=True))

    yield frame(
        [
            ChatChunkChoice(index=i, delta=DeltaMessage(role="assistant", content=""))
            for i in range(prepared.sampling.n)
        ]
    )
    tokens: dict[int, int] = {}
    held: dict[int, list[Chunk]] = {}
    async with aclosing(service.run(prepared)) as chunks:
        async for chunk in chunks:
            tokens[chunk.index] = chunk.completion_tokens
            if prepared.tools is not None:  # calls are read from the whole answer
                held.setdefault(chunk.index, []).append(chunk)
                if chunk.finish_reason is None:
                    continue
                yield frame([_held_choice(service, prepared, held.pop(chunk.index))])
                continue
            delta = DeltaMessage(content=chunk.text) if chunk.text else DeltaMessage()
            logprobs = chat_logprobs(chunk.logprobs) if chunk.logprobs else None
            choice = ChatChunkChoice(
                index=chunk.index,
                delta=delta,
                finish_reason=chunk.finish_reason,
                logprobs=logprobs,
            )
            yield frame([choice])
    if prepared.include_usage:
        yield frame([], _usage(len(prepared.prompt_token_ids), sum(tokens.values())))
    yield DONE


async def completion(service: OpenAIService, batch: list[Prepared]) -> Completion:
    """All prompts of a batch generate at once (the engine batches them), in order."""
    choices: list[CompletionChoice] = []
    prompt_tokens = completion_tokens = 0
    running = [asyncio.ensure_future(service.collect(p)) for p in batch]
    try:
        collected = await asyncio.gather(*running)
    except BaseException:
        for task in running:  # one failed: the others stop (their engine requests abort)
            task.cancel()
        raise
    for offset, (prepared, done) in enumerate(zip(batch, collected, strict=True)):
        n, wanted = prepared.sampling.n, prepared.sampling.logprobs is not None
        choices += [
            CompletionChoice(
                index=offset * n + i,
                text=done.texts[i],
                finish_reason=done.reasons[i],
                logprobs=completion_logprobs(done.logprobs[i]) if wanted else None,
            )
            for i in sorted(done.texts)
        ]
        prompt_tokens += len(prepared.prompt_token_ids)
        completion_tokens += done.tokens
    return Completion(
        id=f"cmpl-{batch[0].request_id}",
        created=int(time.time()),
        model=batch[0].model,
        choices=choices,
        usage=_usage(prompt_tokens, completion_tokens),
    )


async def completion_stream(service: OpenAIService, prepared: Prepared) -> AsyncIterator[str]:
    created = int(time.time())
    tokens: dict[int, int] = {}
    offsets: dict[int, int] = {}
    async with aclosing(service.run(prepared)) as chunks:
        async for chunk in chunks:
            tokens[chunk.index] = chunk.completion_tokens
            at = offsets.get(chunk.index, 0)
            offsets[chunk.index] = at + len(chunk.text)
            choice = CompletionChoice(
                index=chunk.index,
                text=chunk.text,
                finish_reason=chunk.finish_reason,
                logprobs=completion_logprobs(chunk.logprobs, at) if chunk.logprobs else None,
            )
            body = Completion(
                id=f"cmpl-{prepared.request_id}",
                created=created,
                model=prepared.model,
                choices=[choice],
            )
            yield sse(body.model_dump_json(exclude_none=True))
    if prepared.include_usage:
        usage = Completion(
            id=f"cmpl-{prepared.request_id}",
            created=created,
            model=prepared.model,
            choices=[],
            usage=_usage(len(prepared.prompt_token_ids), sum(tokens.values())),
        )
        yield sse(usage.model_dump_json(exclude_none=True))
    yield DONE


def _message(service: OpenAIService, prepared: Prepared, text: str) -> ResponseMessage:
    """The assistant's message; with tools, the calls read from the text."""
    use = prepared.tools
    if use is None:
        return ResponseMessage(content=text)
    parsed = service.engine.tool_calls(text, use.tools) if use.mode == "auto" else None
    read = use.read(text, parsed)
    return ResponseMessage(content=read.content, tool_calls=tool_calls_out(read.calls) or None)


def _held_choice(
    service: OpenAIService, prepared: Prepared, chunks: list[Chunk]
) -> ChatChunkChoice:
    """A tool-using choice, streamed once it has ended: its calls, or its text."""
    message = _message(service, prepared, "".join(c.text for c in chunks))
    whole = _choice(
        message,
        chunks[-1].index,
        chunks[-1].finish_reason,
        chat_logprobs([t for c in chunks for t in c.logprobs])
        if prepared.sampling.logprobs is not None
        else None,
    )
    delta = DeltaMessage(
        content=message.content,
        tool_calls=tool_call_deltas(message.tool_calls) if message.tool_calls else None,
    )
    return ChatChunkChoice(
        index=whole.index, delta=delta, finish_reason=whole.finish_reason, logprobs=whole.logprobs
    )


def _choice(
    message: ResponseMessage, index: int, reason: str | None, logprobs: ChatLogprobs | None
) -> ChatChoice:
    """``tool_calls`` is the finish reason of an answer that ended by calling tools."""
    if message.tool_calls and reason == "stop":
        reason = "tool_calls"
    return ChatChoice(index=index, message=message, finish_reason=reason, logprobs=logprobs)


def _usage(prompt: int, completion: int) -> UsageInfo:
    return UsageInfo(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )
