"""How the ingress observes each request: its id, its route label, its metrics and its access
log line (the error answers are openai/errors.py's)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import structlog
from fastapi import Request, Response
from starlette.background import BackgroundTask
from starlette.routing import Match

from kubellm_runtime import metrics
from kubellm_runtime.logs import request_context

TOO_MANY_REQUESTS = 429
SERVER_ERROR = 500
CLIENT_CLOSED = 499  # the client went away before the answer (nginx's convention)
REQUEST_ID = "X-Request-ID"
REPLICA = "X-Kubellm-Replica"  # which replica answered (Ray Serve's replica id, or host:pid)
# A client's request id is kept only when it is short and plain: it is echoed on every log line.
REQUEST_ID_FORM = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
UNMATCHED = "unmatched"
log = structlog.get_logger("kubellm_runtime.access")


def route_label(request: Request) -> str:
    """The route's template (``/v1/models``), never the raw path: a label per junk path
    would grow the metrics without bound. A path no route serves is ``unmatched``."""
    partial = None
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is Match.FULL:
            return str(getattr(route, "path", UNMATCHED))
        if match is Match.PARTIAL and partial is None:  # the path exists, not the method
            partial = str(getattr(route, "path", UNMATCHED))
    return partial or UNMATCHED


def client_request_id(request: Request) -> str | None:
    given = request.headers.get(REQUEST_ID)
    return given if given is not None and REQUEST_ID_FORM.fullmatch(given) else None


async def observe_requests(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Count, time, gauge and log every request; streams are timed until their last byte.

    The request id is the client's X-Request-ID, or a new one; it is echoed back, and with the
    model, adapter and job_id the routes add, it is on every log line of the request.
    """
    route = route_label(request)
    metrics.IN_PROGRESS.labels(route).inc()
    start = time.perf_counter()
    finished = False
    with request_context(client_request_id(request)) as fields:

        def done(status: int) -> None:
            """Once per request, however it ends (answered, failed, cancelled, cut)."""
            nonlocal finished
            if finished:
                return
            finished = True
            elapsed = time.perf_counter() - start
            metrics.IN_PROGRESS.labels(route).dec()
            metrics.REQUESTS.labels(route, str(status)).inc()
            metrics.DURATION.labels(route).observe(elapsed)
            if status == TOO_MANY_REQUESTS:
                metrics.REJECTED.labels(route).inc()
            level = log.warning if status >= SERVER_ERROR else log.info
            level(
                "request",
                **fields,
                method=request.method,
                path=route,
                status=status,
                duration_ms=round(elapsed * 1000, 2),
            )

        try:
            response = await call_next(request)
        except asyncio.CancelledError:
            done(CLIENT_CLOSED)
            raise
        except Exception:
            done(SERVER_ERROR)
            raise
    response.headers[REQUEST_ID] = fields["request_id"]
    response.headers[REPLICA] = request.app.state.replica
    inner = getattr(response, "body_iterator", None)
    if inner is None:
        done(response.status_code)
        return response

    async def timed() -> AsyncIterator[Any]:
        try:
            async for part in inner:
                yield part
        finally:
            # A stream cut by a timeout or the drain ends with an error frame: counted as that.
            done(getattr(request.state, "stream_status", response.status_code))

    async def after() -> None:
        # A stream whose body never started (the client left first) ends here.
        done(CLIENT_CLOSED)
        if background is not None:
            await background()

    background = response.background
    response.body_iterator = timed()  # type: ignore[attr-defined]
    response.background = BackgroundTask(after)
    return response
