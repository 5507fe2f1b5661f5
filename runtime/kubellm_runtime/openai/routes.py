"""The OpenAI routes: models, chat completions and completions (streamed or not)."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from typing import Any

from fastapi import APIRouter, Request, Response

from kubellm_runtime.generations import Generations
from kubellm_runtime.jobs import IDEMPOTENCY_KEY, JobKey, JobStore, idempotency_key
from kubellm_runtime.openai import answers
from kubellm_runtime.openai.errors import ApiError
from kubellm_runtime.openai.protocol import ChatCompletionRequest, CompletionRequest
from kubellm_runtime.openai.service import OpenAIService, Prepared


def openai_router(
    service: Callable[[], OpenAIService], generations: Generations, jobs: JobStore
) -> APIRouter:
    router = APIRouter()  # behind the ingress's guard (auth before the body is read)

    @router.get("/v1/models")
    async def models() -> dict[str, Any]:
        return service().models().model_dump()

    async def once(
        key: JobKey | None, http: Request, work: Callable[[], Any], slots: int = 1
    ) -> Any:
        """A non-stream answer; with an Idempotency-Key, generated once and replayed (the
        generation is the store's then: a client leaving does not stop it)."""
        if key is None:
            return await generations.once(work, slots, request=http)

        async def stored() -> str:
            return json.dumps(await generations.once(work, slots))

        return Response(await jobs.run_once(key, stored), media_type="application/json")

    @router.post("/v1/chat/completions", response_model=None)
    async def chat(request: ChatCompletionRequest, http: Request) -> Any:
        svc = service()
        key = idempotency_key(http.headers.get(IDEMPOTENCY_KEY), "/v1/chat/completions", request)
        if request.stream:
            return await generations.stream(
                lambda: svc.prepare_chat(request), partial(answers.chat_stream, svc), http
            )

        async def answer() -> dict[str, Any]:
            prepared = await svc.prepare_chat(request)
            return (await answers.chat(svc, prepared)).model_dump(exclude_none=True)

        return await once(key, http, answer)

    @router.post("/v1/completions", response_model=None)
    async def completions(request: CompletionRequest, http: Request) -> Any:
        svc = service()
        key = idempotency_key(http.headers.get(IDEMPOTENCY_KEY), "/v1/completions", request)
        prompts = request.prompts()
        if request.stream:
            if len(prompts) != 1:
                raise ApiError(400, "streaming supports a single prompt", param="prompt")

            async def first() -> Prepared:
                return (await svc.prepare_completion(request))[0]

            return await generations.stream(first, partial(answers.completion_stream, svc), http)

        async def answer() -> dict[str, Any]:
            batch = await svc.prepare_completion(request)
            return (await answers.completion(svc, batch)).model_dump(exclude_none=True)

        return await once(key, http, answer, slots=len(prompts))

    return router
