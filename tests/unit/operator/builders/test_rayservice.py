"""Builders: a golden RayService per sample, byte-identical output, placement and parallelism."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import yaml
from ray.serve.schema import ServeDeploySchema

from kubellm_operator.api.llmdeployment import LLMDeploymentSpec
from kubellm_operator.api.refs import Owner
from kubellm_operator.builders.rayservice import build_rayservice
from kubellm_operator.builders.serve_config import ResolvedAdapter
from kubellm_operator.config import OperatorConfig
from kubellm_operator.crds import yamlio
from kubellm_runtime.contract import ReplicaConfig, ServeArgs
from tests.unit.operator.goldens import assert_golden, shuffled

REPO = Path(__file__).resolve().parents[4]
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
CONFIG = OperatorConfig()
UID = "5b3c7c1e-0000-4000-8000-000000000001"


def build_example(path: Path, config: OperatorConfig = CONFIG) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    owner = Owner(doc["metadata"]["name"], "default", UID, "LLMDeployment")
    return build_rayservice(owner, LLMDeploymentSpec.parse(doc["spec"]), config)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_every_sample_builds_its_golden_rayservice(example: Path) -> None:
    assert_golden(f"{example.stem}.rayservice.yaml", yamlio.dump(build_example(example)))


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_output_is_byte_identical_whatever_the_input_key_order(example: Path) -> None:
    doc = yaml.safe_load(example.read_text())
    owner = Owner(doc["metadata"]["name"], "default", UID, "LLMDeployment")
    outputs = set()
    for seed in range(5):
        spec = LLMDeploymentSpec.parse(shuffled(doc["spec"], random.Random(seed)))
        outputs.add(yamlio.dump(build_rayservice(owner, spec, CONFIG)))
    assert len(outputs) == 1


def _worker(rs: dict[str, Any]) -> dict[str, Any]:
    (group,) = rs["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    return dict(group)


def _serve_deployment(rs: dict[str, Any]) -> dict[str, Any]:
    (app,) = yaml.safe_load(rs["spec"]["serveConfigV2"])["applications"]
    (deployment,) = app["deployments"]
    return dict(deployment)


def test_gpu_workers_go_to_the_pool_with_the_gpu_toleration_and_the_head_gets_no_gpu() -> None:
    rs = build_example(REPO / "examples" / "llama-8b-a100.yaml")
    worker = _worker(rs)["template"]["spec"]
    assert worker["nodeSelector"] == {
        "kubellm.io/node-pool": "a100-80gb",
        "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB",
    }
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in worker[
        "tolerations"
    ]
    assert worker["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    head = rs["spec"]["rayClusterConfig"]["headGroupSpec"]
    assert "nvidia.com/gpu" not in head["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert "tolerations" not in head["template"]["spec"]
    assert head["rayStartParams"]["num-gpus"] == "0"


def test_the_pool_label_key_comes_from_the_operator_config() -> None:
    gke = OperatorConfig(node_pool_label="cloud.google.com/gke-nodepool")
    rs = build_example(REPO / "examples" / "llama-8b-a100.yaml", gke)
    assert (
        _worker(rs)["template"]["spec"]["nodeSelector"]["cloud.google.com/gke-nodepool"]
        == "a100-80gb"
    )


def test_tensor_parallel_8_puts_a_replica_on_one_8_gpu_pod_in_one_placement_group() -> None:
    rs = build_example(REPO / "examples" / "llama-70b-tp8.yaml")
    worker = _worker(rs)
    assert (
        worker["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "8"
    )
    assert worker["replicas"] == 1
    deployment = _serve_deployment(rs)
    assert len(deployment["placement_group_bundles"]) == 8
    assert deployment["placement_group_strategy"] == "STRICT_PACK"
    assert rs["spec"]["upgradeStrategy"] == {"type": "None"}


def test_pipeline_parallel_2_spans_two_pods_of_tensor_parallel_gpus() -> None:
    rs = build_example(REPO / "examples" / "mixtral-pp2.yaml")
    worker = _worker(rs)
    assert worker["replicas"] == 2  # one replica = two pipeline stages = two nodes
    assert (
        worker["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "4"
    )
    assert _serve_deployment(rs)["placement_group_strategy"] == "PACK"


def test_autoscaling_maps_to_ray_serve_and_worker_bounds() -> None:
    rs = build_example(REPO / "examples" / "qwen-lora-autoscaling.yaml")
    assert _serve_deployment(rs)["autoscaling_config"] == {
        "min_replicas": 1,
        "max_replicas": 2,
        "initial_replicas": 1,
        "target_ongoing_requests": 16.0,
    }
    worker = _worker(rs)
    assert (worker["minReplicas"], worker["maxReplicas"]) == (1, 2)
    assert rs["spec"]["rayClusterConfig"]["enableInTreeAutoscaling"] is True


def test_secrets_are_only_referenced_never_inlined() -> None:
    rs = build_example(REPO / "examples" / "qwen-lora-autoscaling.yaml")
    container = _worker(rs)["template"]["spec"]["containers"][0]
    api_key = next(e for e in container["env"] if e["name"] == "KUBELLM_API_KEY")
    assert api_key == {
        "name": "KUBELLM_API_KEY",
        "valueFrom": {"secretKeyRef": {"name": "llm-api-key", "key": "token"}},
    }
    llama = _worker(build_example(REPO / "examples" / "llama-8b-a100.yaml"))
    assert llama["template"]["spec"]["containers"][0]["envFrom"] == [
        {"secretRef": {"name": "hf-token"}}
    ]


def test_child_carries_owner_reference_labels_and_a_stable_dns_safe_name() -> None:
    long_name = "a-very-long-llmdeployment-name-that-exceeds-what-kuberay-accepts-x"
    spec = LLMDeploymentSpec.parse({"model": {"uri": "hf://a/b"}})
    rs = build_rayservice(Owner(long_name, "ns", UID, "LLMDeployment"), spec, CONFIG)
    name = rs["metadata"]["name"]
    assert len(name) <= 47
    again = build_rayservice(Owner(long_name, "ns", UID, "LLMDeployment"), spec, CONFIG)
    assert name == again["metadata"]["name"]
    assert rs["metadata"]["ownerReferences"][0]["uid"] == UID
    assert rs["metadata"]["ownerReferences"][0]["controller"] is True
    assert rs["metadata"]["labels"]["kubellm.io/llmdeployment"] == long_name


def test_the_serve_contract_round_trips_through_serve_config_v2() -> None:
    spec = LLMDeploymentSpec.parse(
        {
            "model": {"uri": "hf://a/b", "maxModelLen": 4096},
            "adapters": [{"name": "x", "fromFineTuneJob": "job"}],
        }
    )
    adapters = (ResolvedAdapter("x", "s3://out/x"),)
    rs = build_rayservice(Owner("m", "ns", UID, "LLMDeployment"), spec, CONFIG, adapters)
    (app,) = yaml.safe_load(rs["spec"]["serveConfigV2"])["applications"]
    args = ServeArgs.model_validate(app["args"])
    assert args.model.max_model_len == 4096
    assert args.lora.enabled
    (deployment,) = app["deployments"]
    config = ReplicaConfig.model_validate(deployment["user_config"])
    assert [(a.name, a.uri) for a in config.adapters] == [("x", "s3://out/x")]
    assert app["import_path"] == "kubellm_runtime.serve.app:build_app"


def test_adapters_and_allowed_sources_change_only_the_live_user_config() -> None:
    """Adding an adapter (or an allowed source) must restart no replica: only the model
    deployment's user_config changes, which Ray Serve applies in place (reconfigure)."""
    base = {"model": {"uri": "hf://a/b"}, "enableLora": True}
    before = _serve_app(base, ())
    after = _serve_app(
        {
            **base,
            "adapters": [{"name": "x", "uri": "pvc://c/x"}],
            "adapterSources": ["s3://bucket-b/p"],
        },
        (ResolvedAdapter("x", "pvc://c/x"),),
    )
    assert after["args"] == before["args"]
    changed = {
        k
        for k in after["deployments"][0]
        if after["deployments"][0][k] != before["deployments"][0].get(k)
    }
    assert changed == {"user_config"}
    assert after["deployments"][0]["user_config"] == {
        "adapters": [{"name": "x", "uri": "pvc://c/x"}],
        "adapter_sources": ["s3://bucket-b/p"],
    }


def _serve_app(spec: dict[str, Any], adapters: tuple[ResolvedAdapter, ...]) -> dict[str, Any]:
    owner = Owner("m", "ns", UID, "LLMDeployment")
    rs = build_rayservice(owner, LLMDeploymentSpec.parse(spec), CONFIG, adapters)
    (app,) = yaml.safe_load(rs["spec"]["serveConfigV2"])["applications"]
    return dict(app)


def _built(spec: dict[str, Any]) -> dict[str, Any]:
    return build_rayservice(
        Owner("m", "ns", UID, "LLMDeployment"), LLMDeploymentSpec.parse(spec), CONFIG
    )


@pytest.mark.parametrize(
    ("spec", "ongoing", "queued", "retry_after"),
    [
        ({}, 256, 256, 1),
        ({"engine": {"maxNumSeqs": 32}}, 32, 32, 1),
        ({"engine": {"maxNumSeqs": 32}, "backpressure": {"maxOngoingRequests": 40}}, 40, 40, 1),
        ({"backpressure": {"maxQueuedRequests": 0, "retryAfterSeconds": 5}}, 256, 0, 5),
    ],
)
def test_ray_serve_answers_overload_with_429_and_retry_after_within_bounds(
    spec: dict[str, Any], ongoing: int, queued: int, retry_after: int
) -> None:
    """Serve's limits come from the engine's batch size unless the spec overrides them, and
    the runtime's own admission is sized to the same number (one answer on both paths)."""
    rs = _built({"model": {"uri": "hf://a/b"}, **spec})
    deployment = _serve_deployment(rs)
    assert deployment["max_ongoing_requests"] == ongoing
    assert deployment["max_queued_requests"] == queued
    assert deployment["backpressure_config"] == {"status_code": 429, "retry_after_s": retry_after}
    (app,) = yaml.safe_load(rs["spec"]["serveConfigV2"])["applications"]
    limits = ServeArgs.model_validate(app["args"]).limits
    assert limits is not None
    assert (limits.max_inflight, limits.retry_after_s) == (ongoing, retry_after)


@pytest.mark.parametrize("timeout", [600, 30])
def test_a_stopping_replica_drains_longer_than_any_request_may_run(timeout: int) -> None:
    """Ray Serve waits graceful_shutdown_timeout_s for a stopping replica's requests; the
    runtime ends any request at its timeout (a stream with an error event). With the drain
    longer than the timeout, a rollout or scale-down never cuts a stream mid-body."""
    spec = {"model": {"uri": "hf://a/b"}, "backpressure": {"requestTimeoutSeconds": timeout}}
    rs = _built(spec)
    (app,) = yaml.safe_load(rs["spec"]["serveConfigV2"])["applications"]
    limits = ServeArgs.model_validate(app["args"]).limits
    assert limits is not None
    assert limits.request_timeout_s == timeout
    assert _serve_deployment(rs)["graceful_shutdown_timeout_s"] > timeout


def test_ray_serve_itself_accepts_the_deployment_options_the_operator_writes() -> None:
    """The serve config is parsed by Ray Serve's own schema (a typo would fail the deploy)."""
    rs = _built({"model": {"uri": "hf://a/b"}, "backpressure": {"retryAfterSeconds": 3}})
    schema = ServeDeploySchema.model_validate(yaml.safe_load(rs["spec"]["serveConfigV2"]))
    (deployment,) = schema.applications[0].deployments
    assert deployment.max_queued_requests == 256
    assert deployment.backpressure_config.status_code == 429


@pytest.mark.parametrize(("cpu", "cores"), [("8", 8), ("2.5", 2), ("500m", 1), ("1500m", 1)])
def test_a_cpu_replica_holds_its_workers_cores(cpu: str, cores: int) -> None:
    """Ray sets OMP_NUM_THREADS to the actor's num_cpus: a CPU engine gets the pod's cores."""
    rs = _built({"model": {"uri": "hf://a/b"}, "resources": {"gpusPerReplica": 0, "cpu": cpu}})
    assert _serve_deployment(rs)["ray_actor_options"] == {"num_cpus": cores, "num_gpus": 0}


def test_the_head_gets_neither_the_model_credentials_nor_the_api_key() -> None:
    """The head runs Ray's control plane and the Serve proxy, no model: only the workers
    receive the secrets."""
    for example in ("qwen-lora-autoscaling.yaml", "llama-8b-a100.yaml"):
        rs = build_example(REPO / "examples" / example)
        head = rs["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["containers"][0]
        assert "envFrom" not in head
        assert all("valueFrom" not in e for e in head.get("env", [])), head.get("env")
        worker = _worker(rs)["template"]["spec"]["containers"][0]
        assert worker.get("envFrom") or any(e["name"] == "KUBELLM_API_KEY" for e in worker["env"])
