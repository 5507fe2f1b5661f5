"""FastAPI ingress: thin routes over OpenAIService, OpenAI-style errors, liveness and readiness."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse

from kubellm_runtime.engine.base import Engine, EngineError
from kubellm_runtime.openai.protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    ErrorDetail,
    ErrorResponse,
)
from kubellm_runtime.openai.service import ApiError, OpenAIService

RETRY_AFTER_LOADING = "5"


@dataclass
class EngineSlot:
    """Holds the engine once it is loaded, or why it could not be."""

    engine: Engine | None = None
    failure: str | None = None

    def service(self) -> OpenAIService:
        if self.failure is not None:
            raise ApiError(503, f"model failed to load: {self.failure}", type="service_unavailable")
        if self.engine is None or not self.engine.ready():
            raise ApiError(503, "the model is still loading", type="service_unavailable")
        return OpenAIService(self.engine)


def error_response(error: ApiError) -> JSONResponse:
    body = ErrorResponse(
        error=ErrorDetail(
            message=error.message, type=error.type, param=error.param, code=error.code
        )
    )
    headers = {"Retry-After": RETRY_AFTER_LOADING} if error.status in {429, 503} else None
    return JSONResponse(body.model_dump(), status_code=error.status, headers=headers)


def _validation_error(exc: RequestValidationError) -> ApiError:
    first: dict[str, Any] = exc.errors()[0]
    if first.get("type") == "json_invalid":
        return ApiError(400, "The request body is not valid JSON.", code="invalid_json")
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    param = ".".join(loc) or None
    message = str(first.get("msg", "invalid request")).removeprefix("Value error, ")
    return ApiError(400, f"{param}: {message}" if param else message, param=param)


def create_app(
    slot: EngineSlot, lifespan_hooks: Sequence[Callable[[EngineSlot], Any]] = ()
) -> FastAPI:
    """The ingress app. ``lifespan_hooks`` run at start-up (e.g. loading the engine)."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        for hook in lifespan_hooks:
            await hook(slot)
        yield
        if slot.engine is not None:
            await slot.engine.shutdown()

    app = FastAPI(title="kubellm runtime", lifespan=lifespan)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(_validation_error(exc))

    @app.exception_handler(EngineError)
    async def _engine_error(_: Request, exc: EngineError) -> JSONResponse:
        return error_response(ApiError(500, f"engine error: {exc}", type="server_error"))

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> JSONResponse:
        try:
            service = slot.service()
        except ApiError as exc:
            return JSONResponse({"status": "not ready", "reason": exc.message}, status_code=503)
        return JSONResponse({"status": "ready", "model": service.engine.model_name})

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return slot.service().models().model_dump()

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(request: ChatCompletionRequest) -> Any:
        service = slot.service()
        prepared = service.prepare_chat(request)
        if request.stream:
            return StreamingResponse(service.chat_stream(prepared), media_type="text/event-stream")
        return (await service.chat(prepared)).model_dump()

    @app.post("/v1/completions", response_model=None)
    async def completions(request: CompletionRequest) -> Any:
        service = slot.service()
        batch = service.prepare_completion(request)
        if request.stream:
            if len(batch) != 1:
                raise ApiError(400, "streaming supports a single prompt", param="prompt")
            return StreamingResponse(
                service.completion_stream(batch[0]), media_type="text/event-stream"
            )
        return (await service.completion(batch)).model_dump(exclude_none=True)

    return app
