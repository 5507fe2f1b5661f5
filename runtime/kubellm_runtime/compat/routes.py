"""The compatibility routes, translated onto the OpenAI service (one serving path)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Any, TypeVar

from fastapi import APIRouter, Body, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from kubellm_runtime.compat.protocol import (
    DEFAULT_MAX_TOKENS,
    BatchGenerateBody,
    ChatBody,
    JobChatBody,
    JobGenerateBody,
    StreamBody,
)
from kubellm_runtime.generations import Generations
from kubellm_runtime.jobs import JobKey, JobStore
from kubellm_runtime.logs import annotate
from kubellm_runtime.openai import answers
from kubellm_runtime.openai.protocol import (
    ChatCompletion,
    ChatCompletionRequest,
    Completion,
    CompletionRequest,
)
from kubellm_runtime.openai.service import OpenAIService, Prepared
from kubellm_runtime.openai.sse import DONE, sse

Body_ = TypeVar("Body_", bound=BaseModel)


def _parse(model: type[Body_], raw: dict[str, Any]) -> Body_:
    """Validate one of the bodies that share a path; errors answer as any other 400."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from exc


def compat_router(
    service: Callable[[], OpenAIService],
    generations: Generations,
    jobs: JobStore,
    adapter_from: Callable[[str | None, str], Awaitable[str]],
) -> APIRouter:
    """``adapter_from``: the adapter to use for a request naming its source (adapter_path)."""
    router = APIRouter()  # behind the ingress's guard (auth before the body is read)

    async def job_once(key: JobKey, generated: Callable[[], Awaitable[str]]) -> str:
        """A job's text, generated once under admission by the store (not the caller)."""

        async def admitted() -> str:
            return str(await generations.once(generated))

        return await jobs.run_once(key, admitted)

    def model_name(svc: OpenAIService, adapter: str | None) -> str:
        return adapter or svc.engine.model_name

    @router.post("/chat")
    async def chat(body: ChatBody, http: Request) -> dict[str, Any]:
        svc = service()
        adapter = body.adapter
        if body.adapter_path is not None:
            adapter = await adapter_from(adapter, body.adapter_path)
        request = ChatCompletionRequest(
            model=model_name(svc, adapter),
            messages=[{"role": "user", "content": body.prompt}],
            max_tokens=body.max_tokens,
            temperature=body.temperature,
        )

        async def answer() -> ChatCompletion:
            return await answers.chat(
                svc, await svc.prepare_chat(request, DEFAULT_MAX_TOKENS, clamp=True)
            )

        reply = await generations.once(answer, request=http)
        return {
            "response": reply.choices[0].message.content,
            "model": reply.model,
            "usage": reply.usage.model_dump(),
        }

    @router.post("/generate")
    async def generate(http: Request, raw: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008
        svc = service()
        if "job_id" in raw:  # the job-keyed body shares this path
            job = _parse(JobGenerateBody, raw)
            annotate(job_id=job.job_id)
            request = CompletionRequest(
                model=job.meta.model or svc.engine.model_name,
                prompt=job.content,
                max_tokens=job.meta.tokens_limit,
                temperature=job.meta.temperature,
                stop=job.meta.stop_words or None,
            )

            async def generated() -> str:
                prepared = await svc.prepare_completion(request, DEFAULT_MAX_TOKENS, clamp=True)
                return str((await answers.completion(svc, prepared)).choices[0].text)

            key = JobKey.of(job.job_id, "/generate", job.model_dump(mode="json"))
            return {"job_id": job.job_id, "content": await job_once(key, generated)}
        batch = _parse(BatchGenerateBody, raw)
        request = CompletionRequest(
            model=model_name(svc, batch.adapter),
            prompt=batch.prompts,
            max_tokens=batch.max_tokens,
            temperature=batch.temperature,
        )

        async def results() -> Completion:
            prepared = await svc.prepare_completion(request, DEFAULT_MAX_TOKENS, clamp=True)
            return await answers.completion(svc, prepared)

        reply = await generations.once(results, slots=len(batch.prompts), request=http)
        return {
            "results": [
                {"prompt": p, "text": c.text, "finish_reason": c.finish_reason}
                for p, c in zip(batch.prompts, reply.choices, strict=True)
            ],
            "model": reply.model,
        }

    @router.post("/chat_completion")
    async def chat_completion(body: JobChatBody) -> dict[str, Any]:
        annotate(job_id=body.job_id)
        svc = service()
        request = ChatCompletionRequest(
            model=body.meta.model or svc.engine.model_name,
            messages=body.messages,
            max_tokens=body.meta.tokens_limit,
            temperature=body.meta.temperature,
            stop=body.meta.stop_words or None,
        )

        async def generated() -> str:
            prepared = await svc.prepare_chat(request, DEFAULT_MAX_TOKENS, clamp=True)
            return str((await answers.chat(svc, prepared)).choices[0].message.content)

        key = JobKey.of(body.job_id, "/chat_completion", body.model_dump(mode="json"))
        return {"job_id": body.job_id, "content": await job_once(key, generated)}

    @router.post("/generate_stream", response_model=None)
    async def generate_stream(body: StreamBody, http: Request) -> Any:
        svc = service()
        request = CompletionRequest(
            model=model_name(svc, body.adapter),
            prompt=body.prompt,
            max_tokens=body.max_tokens,
            temperature=body.temperature,
        )

        async def prepare() -> Prepared:
            return (await svc.prepare_completion(request, DEFAULT_MAX_TOKENS, clamp=True))[0]

        async def events(prepared: Prepared) -> AsyncIterator[str]:
            async with aclosing(svc.run(prepared)) as chunks:
                async for chunk in chunks:
                    yield sse(
                        json.dumps({"text": chunk.text, "finish_reason": chunk.finish_reason})
                    )
            yield DONE

        return await generations.stream(prepare, events, http)

    return router
