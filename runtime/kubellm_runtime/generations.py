"""Generations under admission: backpressure (429), time limits (504), disconnects, drain,
and a stream the engine fails once it has started (503 error frame).

Admission comes first: nothing is rendered or tokenized for a request that gets a 429.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar

import structlog
from fastapi import Request
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from kubellm_runtime.admission import Admission
from kubellm_runtime.engine.base import EngineError
from kubellm_runtime.openai.errors import ApiError, error_body
from kubellm_runtime.openai.sse import sse
from kubellm_runtime.settings import RuntimeSettings

T = TypeVar("T")
log = structlog.get_logger("kubellm_runtime.generations")

TIMED_OUT = ApiError(504, "the generation timed out", type="timeout", code="timeout")
"""The answer to a generation past the request timeout (raised as a copy, or a stream's frame)."""
DRAINED = ApiError(
    503, "the server is shutting down; retry", type="service_unavailable", code="shutting_down"
)
ENGINE_FAILED = ApiError(503, "the engine failed this request; retry", type="service_unavailable")
"""The answer to a request the engine failed (the detail goes to the logs, not the client)."""
DRAIN_MARGIN_S = 1.0  # streams are cut this long before the server's own drain deadline


def sse_error(error: ApiError) -> str:
    return sse(error_body(error).model_dump_json())


class ClientGoneError(Exception):
    """The client disconnected before a non-stream answer was ready: generation stopped."""


async def disconnected(request: Request) -> None:
    """Returns once the client has gone (the body is read already: what follows is that)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


class Generations:
    """Runs generations under backpressure (429 beyond the limit) and a time limit (504).

    Admission comes first: nothing is rendered or tokenized for a request that gets a 429.
    """

    def __init__(self, settings: RuntimeSettings) -> None:
        self.settings = settings
        self.admission = Admission(settings.max_inflight)
        self.draining = False
        self._streams: set[asyncio.Timeout] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def once(
        self,
        work: Callable[[], Awaitable[Any]],
        slots: int = 1,
        request: Request | None = None,
    ) -> Any:
        """``work``'s answer; with ``request``, a client that leaves stops the generation
        (its engine requests are aborted and its slots freed at once)."""
        self._loop = self._loop or asyncio.get_running_loop()
        with self.admission.admit(slots):
            try:
                async with asyncio.timeout(self.settings.request_timeout_s):
                    if request is None:
                        return await work()
                    return await _unless_gone(work(), request)
            except TimeoutError as exc:
                raise replace(TIMED_OUT) from exc

    async def stream(
        self,
        prepare: Callable[[], Awaitable[T]],
        body: Callable[[T], AsyncIterator[str]],
        request: Request,
        *,
        media_type: str = "text/event-stream",
        error_frame: Callable[[ApiError], str] = sse_error,
    ) -> StreamingResponse:
        """Admitted (or 429) before ``prepare``; released when the stream ends or breaks.

        A stream cut by the request timeout or by the drain deadline ends with an error
        frame (504 or 503) instead of stopping mid-body, and is logged and counted as that.
        """
        self._loop = self._loop or asyncio.get_running_loop()
        self.admission.acquire()
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.admission.release()

        try:
            prepared = await prepare()
        except BaseException:
            release()
            raise

        async def guarded() -> AsyncIterator[str]:
            cut: ApiError | None = None
            try:
                async with asyncio.timeout(self.settings.request_timeout_s) as deadline:
                    self._streams.add(deadline)
                    if self.draining:
                        self._drain_one(deadline)
                    async for part in body(prepared):
                        yield part
            except TimeoutError:
                cut = DRAINED if self.draining else TIMED_OUT
            except EngineError as exc:  # after the first frame: too late for a 503 status
                log.warning("engine failed a stream", error=str(exc))
                cut = ENGINE_FAILED
            except ApiError as exc:  # a refusal found once the stream had started
                cut = exc
            finally:
                self._streams.discard(deadline)
                release()
            if cut is not None:
                request.state.stream_status = cut.status
                yield error_frame(cut)

        # The background task also releases a stream whose body never started (early disconnect).
        return StreamingResponse(
            guarded(), media_type=media_type, background=BackgroundTask(release)
        )

    def begin_drain(self) -> None:
        """SIGTERM: streams still running when the drain time is nearly over are cut with a
        503 error frame (the client learns to retry) before the server stops."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._drain_all)

    def _drain_all(self) -> None:
        self.draining = True
        for deadline in list(self._streams):
            self._drain_one(deadline)

    def _drain_one(self, deadline: asyncio.Timeout) -> None:
        loop = asyncio.get_running_loop()
        cut_at = loop.time() + max(0.0, self.settings.drain_seconds - DRAIN_MARGIN_S)
        when = deadline.when()
        deadline.reschedule(cut_at if when is None else min(when, cut_at))


async def _unless_gone(work: Awaitable[Any], request: Request) -> Any:
    job = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(disconnected(request))
    try:
        await asyncio.wait({job, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not job.done():
            job.cancel()  # the engine request is aborted on the way out
            with contextlib.suppress(BaseException):
                await job
    if job.cancelled():
        raise ClientGoneError
    return job.result()
