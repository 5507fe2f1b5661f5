"""The checked-in CRDs are exactly what the models generate, and are structural."""

from __future__ import annotations

from typing import Any

import yaml

from kubellm_operator import crds
from kubellm_operator.api.llmdeployment import (
    AdapterSpec,
    AutoscalingSpec,
    LLMDeploymentSpec,
    ResourcesSpec,
)


def test_checked_in_crds_are_not_stale() -> None:
    assert crds.stale() == [], "regenerate with: python -m kubellm_operator.crds write"


def _walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = []
    if isinstance(node, dict):
        found.append((path, node))
        for key, value in node.items():
            found.extend(_walk(value, f"{path}.{key}"))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.extend(_walk(value, f"{path}[{i}]"))
    return found


def llmd_crd() -> dict[str, Any]:
    return yaml.safe_load(crds.rendered()["kubellm.io_llmdeployments.yaml"])


def test_schema_is_structural_no_refs_unions_or_titles() -> None:
    for path, node in _walk(llmd_crd()):
        for key in (
            "$ref",
            "anyOf",
            "oneOf",
            "title",
            "$defs",
            "patternProperties",
            "propertyNames",
        ):
            assert key not in node, f"{key} at {path}"


def test_every_cross_field_rule_is_in_the_crd_as_cel() -> None:
    in_crd = {
        (v["rule"], v["message"])
        for _, node in _walk(llmd_crd())
        for v in node.get("x-kubernetes-validations", [])
    }
    for model in (LLMDeploymentSpec, ResourcesSpec, AutoscalingSpec, AdapterSpec):
        for rule in model.rules:
            assert (rule.cel, rule.message) in in_crd, rule.message


def test_scale_subresource_points_at_replicas_and_selector() -> None:
    version = llmd_crd()["spec"]["versions"][0]
    assert version["subresources"]["scale"] == {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }
    assert version["subresources"]["status"] == {}


def test_printer_columns_and_short_name() -> None:
    crd = llmd_crd()
    columns = [c["name"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]]
    assert columns == [
        *("Ready", "Model", "Replicas", "Available", "Pool", "Endpoint", "Defaults", "Age")
    ]
    assert crd["spec"]["names"]["shortNames"] == ["llmd"]


def _properties(node: dict[str, Any], path: str) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name, sub in node.get("properties", {}).items():
        found.append((f"{path}.{name}", sub))
        found.extend(_properties(sub, f"{path}.{name}"))
    if "items" in node:
        found.extend(_properties(node["items"], f"{path}[]"))
    return found


def test_fields_carry_descriptions_for_kubectl_explain() -> None:
    spec = llmd_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    placement = spec["properties"]["placement"]
    assert "Node pool" in placement["properties"]["nodePool"]["description"]
    undocumented = [path for path, node in _properties(spec, "spec") if "description" not in node]
    assert undocumented == []
