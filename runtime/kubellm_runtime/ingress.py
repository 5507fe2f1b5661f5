"""FastAPI ingress: thin routes over OpenAIService; liveness, readiness and metrics."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from kubellm_runtime import metrics
from kubellm_runtime.adapters import AdapterConflictError, Adapters
from kubellm_runtime.admin import admin_router
from kubellm_runtime.compat.demo_routes import demo_router
from kubellm_runtime.compat.routes import compat_router
from kubellm_runtime.engine.base import AdapterLoadError, Engine, EngineError
from kubellm_runtime.generations import ENGINE_FAILED, ClientGoneError, Generations
from kubellm_runtime.guard import RequestGuard
from kubellm_runtime.jobs import JobStore, job_store
from kubellm_runtime.middleware import CLIENT_CLOSED, observe_requests
from kubellm_runtime.openai.errors import ApiError, error_response, validation_error
from kubellm_runtime.openai.routes import openai_router
from kubellm_runtime.openai.service import OpenAIService
from kubellm_runtime.settings import RuntimeSettings
from kubellm_runtime.sources import SourceError

log = structlog.get_logger("kubellm_runtime.ingress")


def start_at_zero(app: FastAPI) -> None:
    """Backpressure refusals of every generation route exist from the start, at zero (a rate
    over them reads 0, not "no data", on the dashboard and in the alerts)."""
    for route in app.routes:
        if isinstance(route, APIRoute) and "POST" in route.methods:
            metrics.REJECTED.labels(route.path)


@dataclass
class EngineSlot:
    """Holds the engine (and its adapter set) once it is loaded, or why it could not be."""

    engine: Engine | None = None
    failure: str | None = None
    adapters: Adapters | None = None

    def service(self) -> OpenAIService:
        if self.failure is not None:
            raise ApiError(503, f"model failed to load: {self.failure}", type="service_unavailable")
        if self.engine is None or not self.engine.ready():
            raise ApiError(503, "the model is still loading", type="service_unavailable")
        return OpenAIService(self.engine)

    async def client_adapter(self, name: str | None, source: str) -> str:
        """The adapter a request names by its source; a 400/409 naming the field if not."""
        try:
            return await self.loaded_adapters().for_request(name, source)
        except AdapterConflictError as exc:
            raise ApiError(
                409, f"`{name}` is already served from another source", param="adapter"
            ) from exc
        except (SourceError, AdapterLoadError) as exc:
            raise ApiError(400, str(exc), param="adapter_path") from exc

    def loaded_adapters(self) -> Adapters:
        self.service()  # 503 while loading or failed
        if self.adapters is None:
            raise ApiError(503, "the model is still loading", type="service_unavailable")
        return self.adapters


Hook = Callable[[EngineSlot], Awaitable[Any]]


def _describe(app: FastAPI) -> None:
    """/openapi.json and /docs (behind the same key as the API: the guard's rule)."""

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(openapi_url=f"{root}/openapi.json", title=app.title)


def _map_errors(app: FastAPI, settings: RuntimeSettings) -> None:
    """Every error in OpenAI's shape: the client's as 4xx, the engine's as 503."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc, settings.retry_after_s)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        # 404, 405, 408, 413 from routing and the guard: in OpenAI's shape like every other.
        code = {404: "not_found", 405: "method_not_allowed", 408: "timeout", 413: "too_large"}
        error = ApiError(exc.status_code, str(exc.detail), code=code.get(exc.status_code))
        return error_response(error)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(validation_error(exc))

    @app.exception_handler(ClientGoneError)
    async def _gone(_: Request, __: ClientGoneError) -> Response:
        return Response(status_code=CLIENT_CLOSED)  # nobody reads it: logged and counted

    @app.exception_handler(EngineError)
    async def _engine_error(_: Request, exc: EngineError) -> JSONResponse:
        # The detail is for the operator's logs; the client learns it may retry.
        log.warning("engine failed a request", error=str(exc))
        return error_response(ENGINE_FAILED, settings.retry_after_s)


def create_app(
    slot: EngineSlot,
    lifespan_hooks: Sequence[Hook] = (),
    settings: RuntimeSettings | None = None,
    jobs: JobStore | None = None,
    replica: str | None = None,
) -> FastAPI:
    """The ingress app. ``lifespan_hooks`` run at start-up (e.g. loading the engine);
    ``jobs``: where job_id and Idempotency-Key results live (default: this process);
    ``replica``: this replica's id, sent with every answer (default: host:pid)."""
    settings = settings or RuntimeSettings()
    jobs = jobs or job_store(settings, scope="local")
    generations = Generations(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        for hook in lifespan_hooks:
            await hook(slot)
        yield
        if slot.engine is not None:
            await slot.engine.shutdown()

    # The API's own description follows the API's rule: behind the key when there is one.
    app = FastAPI(
        title="kubellm runtime", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.replica = replica or f"{socket.gethostname()}:{os.getpid()}"
    app.state.generations = generations  # the server's SIGTERM handler starts the drain
    key = settings.api_key.get_secret_value().encode() if settings.api_key else None
    admin = settings.admin_key.get_secret_value().encode() if settings.admin_key else None

    async def respond(error: ApiError, scope: Any, receive: Any, send: Any) -> None:
        await error_response(error)(scope, receive, send)

    # Added first, so it runs inside observe_requests: refused requests are counted too.
    app.add_middleware(
        RequestGuard,
        api_key=key,
        admin_key=admin,
        max_body_bytes=settings.max_body_bytes,
        body_timeout_s=settings.body_timeout_s,
        respond=respond,
    )
    app.middleware("http")(observe_requests)
    _describe(app)
    app.include_router(openai_router(slot.service, generations, jobs))
    app.include_router(compat_router(slot.service, generations, jobs, slot.client_adapter))
    app.include_router(demo_router(slot.service, generations))
    if settings.admin_key is not None:  # local mode's runtime adapter loading
        app.include_router(admin_router(slot.loaded_adapters))

    _map_errors(app, settings)
    start_at_zero(app)

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

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return app
