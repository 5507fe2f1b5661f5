"""`kubectl apply` refusing an object with the field and the rule named, leaving nothing
behind (in the ``scratch_namespace`` fixture's namespace)."""

from __future__ import annotations

from typing import Any

import yaml

from .conftest import E2ECluster
from .test_llmdeployment import GROUP, VERSION, kubectl


def bad(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    """An object of ``kind`` named "bad"."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": kind,
        "metadata": {"name": "bad"},
        "spec": spec,
    }


def assert_refused(
    cluster: E2ECluster, namespace: str, plural: str, obj: dict[str, Any], expected: list[str]
) -> None:
    result = kubectl(cluster, "apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(obj))
    assert result.returncode != 0, f"{obj['metadata']['name']} was accepted: {obj['spec']}"
    for fragment in expected:
        assert fragment in result.stderr, result.stderr
    listed = cluster.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, plural)
    assert listed["items"] == []
