"""Node pools are data; the harness turns them into kwok-managed Nodes and fast kwok stages."""

from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError

from kubellm_dev.kwok import (
    GPU_RESOURCE,
    POD_STAGE_DELAY_MS,
    POOL_LABEL,
    fast_stages,
    kwok_config,
    load_pools,
    node_manifests,
)


def test_the_default_pools_have_two_gpu_pools_and_an_untainted_cpu_pool() -> None:
    pools = load_pools()
    gpu_pools = [p for p in pools if p.gpus]
    cpu_pools = [p for p in pools if not p.gpus]
    assert len(gpu_pools) >= 2
    assert cpu_pools


def test_gpu_nodes_carry_capacity_product_labels_pool_label_and_the_nvidia_taint() -> None:
    nodes = {n["metadata"]["name"]: n for n in node_manifests(load_pools())}
    a100 = nodes["a100-80gb-0"]
    assert a100["status"]["capacity"][GPU_RESOURCE] == "8"
    assert a100["metadata"]["labels"][POOL_LABEL] == "a100-80gb"
    assert a100["metadata"]["labels"]["nvidia.com/gpu.product"] == "NVIDIA-A100-SXM4-80GB"
    assert a100["spec"]["taints"] == [
        {"key": GPU_RESOURCE, "value": "present", "effect": "NoSchedule"}
    ]

    cpu = nodes["cpu-0"]
    assert GPU_RESOURCE not in cpu["status"]["capacity"]
    assert cpu["spec"]["taints"] == []


def test_every_node_is_marked_for_kwok_and_names_are_unique() -> None:
    nodes = node_manifests(load_pools())
    assert (
        len({n["metadata"]["name"] for n in nodes})
        == len(nodes)
        == sum(p.nodes for p in load_pools())
    )
    assert all(n["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake" for n in nodes)


def test_a_typo_in_the_pool_file_is_rejected_naming_the_field() -> None:
    with pytest.raises(ValidationError, match="gpuz"):
        load_pools("pools:\n  - {name: x, nodes: 1, cpu: '1', memory: 1Gi, gpuz: 8}\n")


STAGES = """
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: {name: pod-ready}
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  delay: {durationMilliseconds: 1000, jitterDurationMilliseconds: 5000}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: {name: node-heartbeat-with-lease}
spec:
  resourceRef: {apiGroup: v1, kind: Node}
  delay: {durationMilliseconds: 600000, jitterDurationMilliseconds: 610000}
"""


def test_pod_stages_lose_their_jitter_but_node_heartbeats_keep_their_period() -> None:
    pod, node = yaml.safe_load_all(fast_stages(STAGES))
    assert pod["spec"]["delay"] == {"durationMilliseconds": POD_STAGE_DELAY_MS}
    assert node["spec"]["delay"]["durationMilliseconds"] == 600000


def test_kwok_listens_on_loopback_and_manages_only_annotated_nodes() -> None:
    config, *stages = yaml.safe_load_all(kwok_config(STAGES, port=10247))
    assert config["options"]["serverAddress"] == "127.0.0.1:10247"
    assert config["options"]["manageNodesWithAnnotationSelector"] == "kwok.x-k8s.io/node=fake"
    assert [s["metadata"]["name"] for s in stages] == ["pod-ready", "node-heartbeat-with-lease"]
