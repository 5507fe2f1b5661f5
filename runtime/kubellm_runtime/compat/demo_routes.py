"""The serving demo's routes: /generate_vllm (vLLM's demo server body and answer) and
/basic_generate, translated onto the OpenAI service like the other compatibility routes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from typing import Any

from fastapi import APIRouter, Request

from kubellm_runtime.compat.protocol import DEFAULT_MAX_TOKENS, BasicGenerateBody, VllmGenerateBody
from kubellm_runtime.generations import Generations
from kubellm_runtime.openai.protocol import CompletionRequest
from kubellm_runtime.openai.service import OpenAIService, Prepared

DELIMITER = "\0"  # vLLM's demo server ends each streamed JSON object with a NUL


def _completion(svc: OpenAIService, prompt: str, **sampling: Any) -> CompletionRequest:
    return CompletionRequest(model=svc.engine.model_name, prompt=prompt, **sampling)


def demo_router(service: Callable[[], OpenAIService], generations: Generations) -> APIRouter:
    router = APIRouter()  # behind the ingress's guard (auth before the body is read)

    @router.post("/generate_vllm", response_model=None)
    async def generate_vllm(body: VllmGenerateBody, http: Request) -> Any:
        svc = service()
        request = _completion(
            svc,
            body.prompt,
            max_tokens=body.max_tokens,
            temperature=body.temperature,
            top_p=body.top_p,
            n=body.n,
            stop=body.stop or None,
            seed=body.seed,
        )

        async def prepare() -> Prepared:
            return (await svc.prepare_completion(request, clamp=True))[0]

        if body.stream:

            async def cumulative(prepared: Prepared) -> AsyncIterator[str]:
                texts = [body.prompt] * body.n
                async with aclosing(svc.run(prepared)) as chunks:
                    async for chunk in chunks:
                        texts[chunk.index] += chunk.text
                        yield json.dumps({"text": texts}) + DELIMITER

            return await generations.stream(
                prepare,
                cumulative,
                http,
                media_type="application/octet-stream",
                error_frame=lambda e: (
                    json.dumps({"error": e.message, "code": e.status}) + DELIMITER
                ),
            )

        async def answer() -> dict[str, Any]:
            done = await svc.collect(await prepare())
            return {"text": [body.prompt + done.texts[i] for i in sorted(done.texts)]}

        return await generations.once(answer, request=http)

    @router.post("/basic_generate")
    async def basic_generate(body: BasicGenerateBody, http: Request) -> dict[str, Any]:
        svc = service()
        request = _completion(
            svc, body.prompt, max_tokens=body.max_tokens, temperature=body.temperature
        )

        async def answer() -> dict[str, Any]:
            prepared = (await svc.prepare_completion(request, DEFAULT_MAX_TOKENS, clamp=True))[0]
            done = await svc.collect(prepared)
            return {"prompt": body.prompt, "text": done.texts[0], "finish_reason": done.reasons[0]}

        return dict(await generations.once(answer, request=http))

    return router
