"""Idempotent jobs keyed by a client's job_id or Idempotency-Key (see ``store``)."""

from __future__ import annotations

from kubellm_runtime.jobs.backends import Backend, LocalBackend, RayBackend
from kubellm_runtime.jobs.store import IDEMPOTENCY_KEY, JobKey, JobStore, idempotency_key
from kubellm_runtime.jobs.table import JobTable
from kubellm_runtime.settings import RuntimeSettings

__all__ = ["IDEMPOTENCY_KEY", "JobKey", "JobStore", "idempotency_key", "job_store"]

LEASE_MARGIN_S = 30.0


def job_store(settings: RuntimeSettings, scope: str, on_ray: bool = False) -> JobStore:
    """The store the settings name: Redis when a URL is set, else the Ray cluster's shared
    table on Ray Serve, else this process's. ``scope`` keeps deployments apart in a shared one."""
    bounds = (settings.job_max_entries, settings.job_max_bytes, settings.job_ttl_s)
    backend: Backend
    if settings.job_store_url is not None:
        from kubellm_runtime.jobs.redis_backend import RedisBackend  # noqa: PLC0415

        url = settings.job_store_url.get_secret_value()
        backend = RedisBackend(url, f"kubellm:jobs:{scope}:", *bounds)
    elif on_ray:
        backend = RayBackend(f"kubellm-jobs-{scope}", *bounds)
    else:
        backend = LocalBackend(JobTable(*bounds))
    lease = settings.request_timeout_s + LEASE_MARGIN_S
    return JobStore(backend, lease_s=lease, wait_s=lease)
