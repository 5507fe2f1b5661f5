"""Idempotent jobs: one generation per key, bound to its route and the body that made it.

Semantics of idempotency keys (Stripe's, the IETF Idempotency-Key draft): the first request
with a key runs; a repeat with the same route and body gets the same result, also while the
first is still generating; a repeat with anything else is a 409. The generation belongs to the
store, not to the first caller, so that caller leaving does not fail the others (and a retry
after a dropped connection finds the result). A failed generation is not remembered.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from kubellm_runtime.jobs.backends import Backend
from kubellm_runtime.jobs.table import Done, Held
from kubellm_runtime.openai.errors import ApiError
from kubellm_runtime.openai.protocol import SamplingFields

log = structlog.get_logger(__name__)
POLL_FIRST_S = 0.02
POLL_MAX_S = 0.5


@dataclass(frozen=True)
class JobKey:
    """A client's key for one request: which route, which body, and where the key was sent."""

    job_id: str
    route: str
    fingerprint: str
    param: str = "job_id"
    """Where the client sent the key (job_id, or the Idempotency-Key header): named in a 409."""

    @classmethod
    def of(cls, job_id: str, route: str, body: Any, param: str = "job_id") -> JobKey:
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        digest = hashlib.sha256(f"{route}\n{canonical}".encode()).hexdigest()
        return cls(job_id, route, digest, param)


def _conflict(key: JobKey, route: str) -> ApiError:
    where = "another route" if route != key.route else "a different request body"
    return ApiError(
        409,
        f"{key.param} `{key.job_id}` was already used for {where} ({route}); a key names one "
        "request: send a new one for a different request",
        param=key.param,
        code="idempotency_conflict",
    )


class JobStore:
    """Runs each key's work once across every replica that shares the backend."""

    def __init__(self, backend: Backend, lease_s: float, wait_s: float) -> None:
        self.backend = backend
        self.lease_s = lease_s
        """How long a claim holds without its owner finishing (an owner that died)."""
        self.wait_s = wait_s
        """How long a duplicate waits for another replica's generation (then 504)."""
        self._running: dict[str, tuple[JobKey, asyncio.Task[str]]] = {}

    async def run_once(self, key: JobKey, work: Callable[[], Awaitable[str]]) -> str:
        try:
            async with asyncio.timeout(self.wait_s):
                return await self._run_once(key, work)
        except TimeoutError as exc:
            raise ApiError(504, "the job is still being generated; retry", type="timeout") from exc

    async def _run_once(self, key: JobKey, work: Callable[[], Awaitable[str]]) -> str:
        delay = POLL_FIRST_S
        while True:
            running = self._running.get(key.job_id)
            if running is not None:  # generating in this replica: share the task
                if running[0].fingerprint != key.fingerprint:
                    raise _conflict(key, running[0].route)
                return await asyncio.shield(running[1])
            held = await self._claim(key)
            if held is None:
                return await asyncio.shield(self._start(key, work))
            if held.fingerprint != key.fingerprint:
                raise _conflict(key, held.route)
            if isinstance(held, Done):
                return held.result
            await asyncio.sleep(delay)  # another replica generates it: look again shortly
            delay = min(delay * 2, POLL_MAX_S)

    async def _claim(self, key: JobKey) -> Held | None:
        try:
            return await self.backend.claim(key.job_id, key.route, key.fingerprint, self.lease_s)
        except Exception as exc:
            log.warning("job store unavailable", error=f"{type(exc).__name__}: {exc}")
            raise ApiError(
                503, "the job store is unavailable; retry", type="service_unavailable"
            ) from exc

    def _start(self, key: JobKey, work: Callable[[], Awaitable[str]]) -> asyncio.Task[str]:
        task = asyncio.create_task(self._generate(key, work))
        self._running[key.job_id] = (key, task)
        task.add_done_callback(_retrieved)
        return task

    async def _generate(self, key: JobKey, work: Callable[[], Awaitable[str]]) -> str:
        try:
            try:
                result = await work()
            except BaseException:
                await asyncio.shield(self._release(key))
                raise
            try:
                await self.backend.finish(key.job_id, key.fingerprint, result)
            except Exception as exc:  # answered all the same; a later repeat generates again
                log.warning("job result not stored", error=f"{type(exc).__name__}: {exc}")
            return result
        finally:
            self._running.pop(key.job_id, None)

    async def _release(self, key: JobKey) -> None:
        try:
            await self.backend.release(key.job_id, key.fingerprint)
        except Exception as exc:  # the claim's lease frees it in the end
            log.warning("job claim not released", error=f"{type(exc).__name__}: {exc}")


def _retrieved(task: asyncio.Task[str]) -> None:
    """A generation nobody waits for any more may fail: not an 'unretrieved' warning."""
    if not task.cancelled():
        task.exception()


IDEMPOTENCY_KEY = "Idempotency-Key"
_KEY_FORM = re.compile(r"[\x21-\x7e]{1,255}")


def idempotency_key(header: str | None, route: str, body: SamplingFields) -> JobKey | None:
    """The OpenAI routes' Idempotency-Key header as a job key (None without one)."""
    if header is None:
        return None
    if not _KEY_FORM.fullmatch(header):
        raise ApiError(
            400,
            f"{IDEMPOTENCY_KEY}: 1 to 255 visible ASCII characters",
            param=IDEMPOTENCY_KEY,
        )
    if body.stream:
        raise ApiError(
            400,
            f"{IDEMPOTENCY_KEY} is not supported with stream: true (a stream is not replayed)",
            param=IDEMPOTENCY_KEY,
        )
    return JobKey.of(header, route, body.model_dump(mode="json"), param=IDEMPOTENCY_KEY)
