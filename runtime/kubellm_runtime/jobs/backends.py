"""Where job entries live: this process, or a table every replica of the Ray cluster shares.

Both speak the job table's four calls; Redis (``redis_backend``) is the third.
"""

from __future__ import annotations

from typing import Any, Protocol

from kubellm_runtime.jobs.table import Held, JobTable


class Backend(Protocol):
    async def claim(
        self, job_id: str, route: str, fingerprint: str, lease_s: float
    ) -> Held | None: ...

    async def peek(self, job_id: str) -> Held | None: ...

    async def finish(self, job_id: str, fingerprint: str, result: str) -> bool: ...

    async def release(self, job_id: str, fingerprint: str) -> None: ...


class LocalBackend:
    """A job table in this process (local mode: one replica)."""

    def __init__(self, table: JobTable) -> None:
        self.table = table

    async def claim(self, job_id: str, route: str, fingerprint: str, lease_s: float) -> Held | None:
        return self.table.claim(job_id, route, fingerprint, lease_s)

    async def peek(self, job_id: str) -> Held | None:
        return self.table.peek(job_id)

    async def finish(self, job_id: str, fingerprint: str, result: str) -> bool:
        return self.table.finish(job_id, fingerprint, result)

    async def release(self, job_id: str, fingerprint: str) -> None:
        self.table.release(job_id, fingerprint)


class RayBackend:
    """The job table every replica in one Ray cluster shares: a named, detached actor that the
    first replica creates and the others find (created again if its node went away)."""

    def __init__(self, name: str, max_entries: int, max_bytes: int, ttl_s: float) -> None:
        self.name = name
        self._bounds = (max_entries, max_bytes, ttl_s)
        self._actor: Any = None

    def _handle(self, fresh: bool = False) -> Any:
        import ray  # noqa: PLC0415 - only replicas on Ray Serve use this backend

        if self._actor is None or fresh:
            # The table itself is the actor: its calls run one at a time, so each is atomic.
            actor = ray.remote(num_cpus=0, max_restarts=-1)(JobTable)
            self._actor = actor.options(
                name=self.name, namespace="kubellm", lifetime="detached", get_if_exists=True
            ).remote(*self._bounds)
        return self._actor

    async def _call(self, method: str, *args: Any) -> Any:
        from ray.exceptions import RayActorError  # noqa: PLC0415

        try:
            return await getattr(self._handle(), method).remote(*args)
        except RayActorError:  # the table's node died: a new one (its entries are gone)
            return await getattr(self._handle(fresh=True), method).remote(*args)

    async def claim(self, job_id: str, route: str, fingerprint: str, lease_s: float) -> Held | None:
        result: Held | None = await self._call("claim", job_id, route, fingerprint, lease_s)
        return result

    async def peek(self, job_id: str) -> Held | None:
        result: Held | None = await self._call("peek", job_id)
        return result

    async def finish(self, job_id: str, fingerprint: str, result: str) -> bool:
        return bool(await self._call("finish", job_id, fingerprint, result))

    async def release(self, job_id: str, fingerprint: str) -> None:
        await self._call("release", job_id, fingerprint)
