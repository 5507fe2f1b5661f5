"""The OpenAI routes: models, chat completions and completions (streamed or not)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response

from kubellm_runtime.jobs import IDEMPOTENCY_KEY, JobKey, JobStore, idempotency_key
from kubellm_runtime.middleware import Generations
from kubellm_runtime.openai.errors import ApiError
from kubellm_runtime.openai.protocol import ChatCompletionRequest, CompletionRequest
from kubellm_runtime.openai.service import OpenAIService


def openai_router(
    service: Callable[[], OpenAIService], generations: Generations, jobs: JobStore
) -> APIRouter:
    router = APIRouter()  # behind the ingress's guard (auth before the body is read)

    @router.get("/v1/models")
    async def models() -> dict[str, Any]:
        return service().models().model_dump()

    async def once(key: JobKey | None, work: Callable[[], Any]) -> Any:
        """A non-stream answer; with an Idempotency-Key, generated once and replayed."""
        if key is None:
            return await generations.once(work)

        async def stored() -> str:
            return json.dumps(await generations.once(work))

        return Response(await jobs.run_once(key, stored), media_type="application/json")

    @router.post("/v1/chat/completions", response_model=None)
    async def chat(request: ChatCompletionRequest, http: Request) -> Any:
        svc = service()
        key = idempotency_key(http.headers.get(IDEMPOTENCY_KEY), "/v1/chat/completions", request)
        prepared = svc.prepare_chat(request)
        if request.stream:
            return generations.stream(svc.chat_stream(prepared))

        async def answer() -> dict[str, Any]:
            return (await svc.chat(prepared)).model_dump()

        return await once(key, answer)

    @router.post("/v1/completions", response_model=None)
    async def completions(request: CompletionRequest, http: Request) -> Any:
        svc = service()
        key = idempotency_key(http.headers.get(IDEMPOTENCY_KEY), "/v1/completions", request)
        batch = svc.prepare_completion(request)
        if request.stream:
            if len(batch) != 1:
                raise ApiError(400, "streaming supports a single prompt", param="prompt")
            return generations.stream(svc.completion_stream(batch[0]))

        async def answer() -> dict[str, Any]:
            return (await svc.completion(batch)).model_dump(exclude_none=True)

        return await once(key, answer)

    return router
