"""Workers mount pvc:// claims read-only where the runtime looks, and a model download cache."""

from __future__ import annotations

from typing import Any

from kubellm_operator.api.llmdeployment import LLMDeploymentSpec
from kubellm_operator.builders.storage import model_mounts, model_volumes
from kubellm_operator.config import OperatorConfig


def parsed(**spec: Any) -> LLMDeploymentSpec:
    return LLMDeploymentSpec.model_validate({"model": {"uri": "pvc://models/llama"}, **spec})


def test_each_claim_is_mounted_once_read_only_under_the_pvc_root() -> None:
    spec = parsed(
        adapters=[
            {"name": "a", "uri": "pvc://models/adapters/a"},
            {"name": "b", "uri": "s3://bucket/b"},
        ]
    )
    assert sorted(spec.claims) == ["models"]
    (mount,) = [m for m in model_mounts(spec) if m["name"].startswith("pvc-")]
    assert mount == {"name": "pvc-models", "mountPath": "/mnt/pvc/models", "readOnly": True}
    (volume,) = [v for v in model_volumes(spec, OperatorConfig()) if "persistentVolumeClaim" in v]
    assert volume["persistentVolumeClaim"] == {"claimName": "models", "readOnly": True}


def test_a_long_claim_name_still_makes_a_valid_volume_name() -> None:
    claim = "c" * 200
    spec = parsed(model={"uri": f"pvc://{claim}/llama"})
    names = {v["name"] for v in model_volumes(spec, OperatorConfig())}
    assert all(len(n) <= 63 for n in names)
    assert len(names) == 2  # the cache and the claim


def test_the_download_cache_is_per_pod_unless_configured_per_node() -> None:
    spec = parsed(model={"uri": "s3://bucket/llama"})
    assert model_volumes(spec, OperatorConfig()) == [{"name": "model-cache", "emptyDir": {}}]
    per_node = OperatorConfig(model_cache="hostPath", model_cache_host_path="/data/models")
    assert model_volumes(spec, per_node) == [
        {
            "name": "model-cache",
            "hostPath": {"path": "/data/models", "type": "DirectoryOrCreate"},
        }
    ]
