"""Shared job stores for real: two replicas (two JobStores) on one Redis server, and on one
Ray cluster's table, generate a repeated job_id once and refuse a reused one with a 409."""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubellm_dev.procs import Supervisor
from kubellm_dev.ray_head import start_ray_head
from kubellm_runtime.jobs import JobKey, JobStore
from kubellm_runtime.jobs.backends import Backend, RayBackend
from kubellm_runtime.jobs.redis_backend import RedisBackend
from kubellm_runtime.openai.errors import ApiError

from .conftest import _unavailable, free_port, free_ray_ports


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server (Debian's package, installed by scripts/install.sh) on loopback."""
    binary = shutil.which("redis-server")
    if binary is None:
        _unavailable("redis-server is not installed (scripts/install.sh installs it)")
    port = free_port()
    logs: Path = tmp_path_factory.mktemp("redis")
    supervisor = Supervisor(logs)
    proc = supervisor.start(
        "redis",
        [
            str(binary),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        ports=[port],
    )

    def answers() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")

    try:
        supervisor.wait_ready(proc, answers, timeout=30)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        supervisor.stop_all()


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A real Ray head (stopped by process group afterwards), this test process its driver."""
    import ray

    from kubellm_dev import netns

    if not netns.loopback_only():
        _unavailable("Ray runs only in a loopback-only namespace here: use `make test`")
    ports = free_ray_ports()
    supervisor = Supervisor(tmp_path_factory.mktemp("ray-logs"))
    try:
        start_ray_head(supervisor, tmp_path_factory.mktemp("ray-temp"), ports)
        ray.init(address=f"127.0.0.1:{ports.gcs}", namespace="kubellm-test")
        yield
    finally:
        ray.shutdown()
        supervisor.stop_all()


def two_replicas(backends: tuple[Backend, Backend]) -> tuple[JobStore, JobStore]:
    return tuple(JobStore(b, lease_s=30, wait_s=30) for b in backends)  # type: ignore[return-value]


async def exercise(replicas: tuple[JobStore, JobStore], prefix: str) -> None:
    a, b = replicas
    runs: list[str] = []
    started, gate = asyncio.Event(), asyncio.Event()

    async def work() -> str:
        runs.append("ran")
        started.set()
        await gate.wait()  # held until the generation has started on one replica
        return "the answer"

    key = JobKey.of(f"{prefix}-1", "/generate", {"content": "hi"})
    first = asyncio.create_task(a.run_once(key, work))
    second = asyncio.create_task(b.run_once(key, work))
    await started.wait()
    gate.set()
    assert await first == await second == "the answer"
    assert runs == ["ran"]  # generated once across both replicas
    # A later repeat on either replica gets the stored result.
    assert await b.run_once(key, work) == "the answer"
    assert runs == ["ran"]
    # The same id with another body is a conflict on the other replica too.
    other = JobKey.of(f"{prefix}-1", "/generate", {"content": "someone else"})
    with pytest.raises(ApiError) as refused:
        await b.run_once(other, work)
    assert refused.value.status == 409


async def test_two_replicas_on_one_redis_generate_a_job_once(redis_url: str) -> None:
    backends = (
        RedisBackend(redis_url, "kubellm:jobs:t1:", 100, 1 << 20, 60),
        RedisBackend(redis_url, "kubellm:jobs:t1:", 100, 1 << 20, 60),
    )
    await exercise(two_replicas(backends), "redis")


async def test_redis_store_evicts_the_oldest_past_its_bounds(redis_url: str) -> None:
    backend = RedisBackend(redis_url, "kubellm:jobs:bounds:", 2, 1 << 20, 60)
    store = JobStore(backend, lease_s=30, wait_s=30)

    async def work() -> str:
        return "r"

    for n in range(3):
        await store.run_once(JobKey.of(f"j{n}", "/generate", {}), work)
    assert await backend.peek("j0") is None
    assert await backend.peek("j2") is not None
    assert int(await backend.redis.zcard("kubellm:jobs:bounds:index")) == 2


async def test_a_redis_that_does_not_answer_is_a_503_not_a_500() -> None:
    store = JobStore(
        RedisBackend(f"redis://127.0.0.1:{free_port()}/0", "x:", 10, 1 << 20, 60), 30, 30
    )

    async def work() -> str:
        return "r"

    with pytest.raises(ApiError) as refused:
        await store.run_once(JobKey.of("j", "/generate", {}), work)
    assert refused.value.status == 503


async def test_two_replicas_on_one_ray_cluster_generate_a_job_once(ray_cluster: None) -> None:
    backends = (
        RayBackend("kubellm-jobs-t", 100, 1 << 20, 60),
        RayBackend("kubellm-jobs-t", 100, 1 << 20, 60),
    )
    await exercise(two_replicas(backends), "ray")
