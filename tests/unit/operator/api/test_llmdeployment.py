"""LLMDeployment models accept what users write and reject bad specs naming field and rule."""

from __future__ import annotations

from typing import Any

import pytest

from kubellm_operator.api.base import InvalidSpecError
from kubellm_operator.api.llmdeployment import LLMDeploymentSpec

BASE: dict[str, Any] = {"model": {"uri": "hf://meta-llama/Llama-3.1-8B-Instruct"}}


def spec(**overrides: Any) -> dict[str, Any]:
    return {**BASE, **overrides}


@pytest.mark.parametrize(
    "raw",
    [
        BASE,
        spec(model={"uri": "s3://bucket/models/llama"}),
        spec(model={"uri": "gs://bucket/llama"}),
        spec(model={"uri": "pvc://models/llama"}),
        spec(model={"uri": "file:///models/llama"}),
        spec(resources={"gpusPerReplica": 8, "tensorParallelSize": 8}),
        spec(resources={"gpusPerReplica": 8, "tensorParallelSize": 4, "pipelineParallelSize": 2}),
        spec(resources={"gpusPerReplica": 0}),
        spec(autoscaling={"minReplicas": 0, "maxReplicas": 4}, replicas=0),
        spec(
            adapters=[
                {"name": "a", "uri": "s3://bucket-x/a"},
                {"name": "b", "fromFineTuneJob": "job"},
            ]
        ),
        spec(engine={"extraArgs": {"enforce-eager": "true"}}),
        spec(placement={"tolerations": [{"key": "dedicated", "operator": "Exists"}]}),
    ],
)
def test_valid_specs_are_accepted(raw: dict[str, Any]) -> None:
    LLMDeploymentSpec.parse(raw)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (spec(model={"uri": "ftp://x/y"}), "spec.model.uri: String should match pattern"),
        (spec(model={"uri": "s3://bucket-b/../x"}), "spec.model.uri: String should match pattern"),
        (spec(model={"uri": "pvc://c/a\\b"}), "spec.model.uri: String should match pattern"),
        (
            spec(adapters=[{"name": "a", "uri": "file:///m/./a"}]),
            "spec.adapters.0.uri: String should match pattern",
        ),
        (
            spec(adapterSources=["s3://bucket-b/%2e%2e"]),
            "spec.adapterSources.0: String should match",
        ),
        ({}, "spec.model: Field required"),
        (spec(replicaz=2), "spec.replicaz: Extra inputs are not permitted"),
        (spec(replicas=-1), "spec.replicas: Input should be greater than or equal to 0"),
        (
            spec(resources={"gpusPerReplica": 3, "tensorParallelSize": 2}),
            "spec.resources.gpusPerReplica: gpusPerReplica must be a multiple of "
            "tensorParallelSize",
        ),
        (
            spec(resources={"gpusPerReplica": 4, "tensorParallelSize": 2}),
            "spec.resources.gpusPerReplica: gpusPerReplica must equal tensorParallelSize * "
            "pipelineParallelSize",
        ),
        (
            spec(resources={"gpusPerReplica": 0, "tensorParallelSize": 2}),
            "spec.resources.gpusPerReplica: a CPU-only replica",
        ),
        (
            spec(
                engine={"backend": "transformers"},
                resources={"gpusPerReplica": 2, "tensorParallelSize": 2},
            ),
            "spec.engine.backend: the transformers backend serves without tensor",
        ),
        (spec(engine={"backend": "tgi"}), "spec.engine.backend: Input should be 'vllm'"),
        (
            spec(enableLora=False, adapters=[{"name": "a", "uri": "file:///a"}]),
            "spec.enableLora: adapters need LoRA",
        ),
        (
            spec(autoscaling={"minReplicas": 3, "maxReplicas": 2}, replicas=3),
            "spec.autoscaling.minReplicas: minReplicas must be less than or equal to maxReplicas",
        ),
        (
            spec(autoscaling={"minReplicas": 2, "maxReplicas": 4}, replicas=1),
            "spec.replicas: with autoscaling, replicas must lie between minReplicas and "
            "maxReplicas",
        ),
        (
            spec(
                adapters=[
                    {"name": "a", "uri": "s3://bucket-x/a"},
                    {"name": "a", "uri": "s3://bucket-x/b"},
                ]
            ),
            "spec.adapters: adapter names must be unique",
        ),
        (
            spec(adapters=[{"name": "a"}]),
            "spec.adapters.0: set exactly one of uri or fromFineTuneJob",
        ),
        (
            spec(adapters=[{"name": "a", "uri": "s3://bucket-x", "fromFineTuneJob": "j"}]),
            "spec.adapters.0: set exactly one of uri or fromFineTuneJob",
        ),
        (
            spec(engine={"gpuMemoryUtilization": 1.5}),
            "spec.engine.gpuMemoryUtilization: Input should be less than or equal to 1",
        ),
        (
            spec(upgradeStrategy="Rolling"),
            "spec.upgradeStrategy: Input should be 'NewCluster' or 'None'",
        ),
        (spec(placement={"nodePool": "A100_80"}), "spec.placement.nodePool: String should match"),
        (spec(resources={"memory": "lots"}), "spec.resources.memory: String should match"),
        (
            spec(env=[{"name": "A", "value": "1", "valueFrom": {"secretKeyRef": {}}}]),
            "spec.env.0: set either value or valueFrom, not both",
        ),
    ],
)
def test_invalid_specs_are_rejected_naming_the_field(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidSpecError) as rejected:
        LLMDeploymentSpec.parse(raw)
    assert message in str(rejected.value)


def test_served_name_defaults_to_the_last_path_element_of_the_uri() -> None:
    assert LLMDeploymentSpec.parse(BASE).model.default_served_name() == "Llama-3.1-8B-Instruct"
    named = LLMDeploymentSpec.parse(spec(model={"uri": "hf://a/b", "servedName": "mine"}))
    assert named.model.default_served_name() == "mine"


def test_models_are_frozen() -> None:
    parsed = LLMDeploymentSpec.parse(BASE)
    with pytest.raises(Exception, match="frozen"):
        parsed.replicas = 3  # type: ignore[misc]
