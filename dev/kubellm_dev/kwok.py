"""kwok's configuration and the fake GPU node pools it plays the kubelet for."""

from __future__ import annotations

from importlib import resources
from typing import Any, Final

import yaml
from pydantic import BaseModel, ConfigDict, Field

POOL_LABEL: Final = "kubellm.io/node-pool"
GPU_RESOURCE: Final = "nvidia.com/gpu"
GPU_TAINT: Final = {"key": GPU_RESOURCE, "value": "present", "effect": "NoSchedule"}
# kwok only manages nodes that carry this annotation, so it never touches a real node.
KWOK_NODE_ANNOTATION: Final = "kwok.x-k8s.io/node"

# Upstream stage files (relative to kustomize/stage in the kwok module) that make fake
# nodes Ready, keep their leases alive, and walk pods through create → ready → complete → delete.
KWOK_STAGE_FILES: Final = (
    "node/fast/node-initialize.yaml",
    "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "pod/general/pod-create.yaml",
    "pod/general/pod-init-container-running.yaml",
    "pod/general/pod-init-container-completed.yaml",
    "pod/general/pod-ready.yaml",
    "pod/general/pod-complete.yaml",
    "pod/general/pod-delete.yaml",
)

# Upstream pod stages wait 1 s plus up to 5 s of jitter per step to look like real kubelets;
# tests only need the order of events, so pods move on after this delay, without jitter.
POD_STAGE_DELAY_MS: Final = 100


class Pool(BaseModel):
    """One node pool of the test cluster."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str
    nodes: int = Field(ge=1)
    cpu: str
    memory: str
    pods: int = Field(default=110, ge=1)
    gpus: int = Field(default=0, ge=0)
    gpu_product: str | None = Field(default=None, alias="gpuProduct")
    gpu_memory: int | None = Field(default=None, alias="gpuMemory")


class PoolFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    pools: tuple[Pool, ...]


def load_pools(text: str | None = None) -> tuple[Pool, ...]:
    if text is None:
        text = resources.files("kubellm_dev").joinpath("data/pools.yaml").read_text()
    return PoolFile.model_validate(yaml.safe_load(text)).pools


def node_manifest(pool: Pool, index: int) -> dict[str, Any]:
    name = f"{pool.name}-{index}"
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "node.kubernetes.io/instance-type": f"kwok-{pool.name}",
        "type": "kwok",
        POOL_LABEL: pool.name,
    }
    capacity: dict[str, str] = {"cpu": pool.cpu, "memory": pool.memory, "pods": str(pool.pods)}
    taints: list[dict[str, str]] = []
    if pool.gpus:
        labels |= {
            "nvidia.com/gpu.present": "true",
            "nvidia.com/gpu.count": str(pool.gpus),
        }
        if pool.gpu_product:
            labels["nvidia.com/gpu.product"] = pool.gpu_product
        if pool.gpu_memory:
            labels["nvidia.com/gpu.memory"] = str(pool.gpu_memory)
        capacity[GPU_RESOURCE] = str(pool.gpus)
        taints.append(dict(GPU_TAINT))
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {KWOK_NODE_ANNOTATION: "fake"},
        },
        "spec": {"taints": taints},
        "status": {"capacity": capacity, "allocatable": capacity},
    }


def node_manifests(pools: tuple[Pool, ...]) -> list[dict[str, Any]]:
    return [node_manifest(pool, i) for pool in pools for i in range(pool.nodes)]


def fast_stages(stages_yaml: str) -> str:
    """Upstream stages with pod delays shortened and jitter removed (node heartbeats untouched)."""
    out = []
    for doc in yaml.safe_load_all(stages_yaml):
        spec = doc["spec"]
        delay = spec.get("delay")
        if delay and spec["resourceRef"]["kind"] == "Pod":
            delay["durationMilliseconds"] = POD_STAGE_DELAY_MS
            delay.pop("jitterDurationMilliseconds", None)
            delay.pop("jitterDurationFrom", None)
        out.append(doc)
    return yaml.safe_dump_all(out, sort_keys=False)


def kwok_config(stages_yaml: str, *, port: int) -> str:
    """KwokConfiguration plus stages, as one multi-document file for `kwok --config`."""
    config = {
        "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
        "kind": "KwokConfiguration",
        "options": {
            "cidr": "10.244.0.0/16",
            "nodeIP": "10.255.0.1",
            "manageNodesWithAnnotationSelector": f"{KWOK_NODE_ANNOTATION}=fake",
            "serverAddress": f"127.0.0.1:{port}",
            "nodeLeaseDurationSeconds": 40,
            # kwok applies its defaults only to its built-in configuration: set what it needs.
            "nodeLeaseParallelism": 4,
            "podPlayStageParallelism": 4,
            "nodePlayStageParallelism": 4,
            "podsOnNodeSyncParallelism": 1,
            "enableCRDs": [],
        },
    }
    return yaml.safe_dump(config, sort_keys=False) + "---\n" + fast_stages(stages_yaml)
