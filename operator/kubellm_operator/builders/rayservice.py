"""The RayService child of an LLMDeployment, with owner reference, labels and a stable name."""

from __future__ import annotations

from typing import Any

from kubellm_operator import names
from kubellm_operator.api.llmdeployment import LLMDeploymentSpec
from kubellm_operator.api.refs import Owner
from kubellm_operator.builders.defaults import BUILD_ANNOTATION, BuildDefaults
from kubellm_operator.builders.owner import owner_reference
from kubellm_operator.builders.raycluster import ray_cluster_config
from kubellm_operator.builders.serve_config import ResolvedAdapter, serve_config
from kubellm_operator.config import OperatorConfig


def build_rayservice(
    owner: Owner,
    spec: LLMDeploymentSpec,
    config: OperatorConfig,
    adapters: tuple[ResolvedAdapter, ...] = (),
) -> dict[str, Any]:
    """The full desired RayService; identical input gives identical output, byte for byte."""
    return {
        "apiVersion": names.RAY_API_VERSION,
        "kind": names.RAYSERVICE_KIND,
        "metadata": {
            "name": names.rayservice_name(owner.name),
            "namespace": owner.namespace,
            "labels": names.child_labels(names.LABEL_LLMDEPLOYMENT, owner.name),
            # What it is built with of the operator's configuration: later builds keep it.
            "annotations": {BUILD_ANNOTATION: BuildDefaults.of(config, spec).to_annotation()},
            "ownerReferences": [owner_reference(owner)],
        },
        "spec": {
            "upgradeStrategy": {"type": spec.upgrade_strategy},
            "serveConfigV2": serve_config(spec, adapters, config),
            "rayClusterConfig": ray_cluster_config(owner.name, spec, config),
        },
    }
