"""The floor under create→RayService: the least any controller can do on this API server.

It watches LLMDeployments in one namespace and, for each one ADDED, server-side applies a
RayService copied from a template (the one kubellm built for the benchmark's first object),
renamed and owned by the new object. No parsing, no building, no status, no work queue: one
watch event in, one apply out, on the same Kubernetes client the operator uses.
``bench_operator.py`` runs it beside the operator, alternating objects between the two, so
both are measured on the same API server in the same moment.

    python floor_controller.py KUBECONFIG NAMESPACE TEMPLATE.json

It runs until the benchmark ends it (SIGTERM, by PID).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch

GROUP, VERSION, PLURAL = "kubellm.io", "v1alpha1", "llmdeployments"
FLOOR_LABEL = "bench.kubellm.io/floor"


def rayservice_for(template: dict[str, Any], parent: dict[str, Any]) -> dict[str, Any]:
    """The template, renamed after ``parent`` and owned by it (as kubellm's child is)."""
    meta = parent["metadata"]
    return {
        "apiVersion": template["apiVersion"],
        "kind": template["kind"],
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "labels": {FLOOR_LABEL: "true"},
            "ownerReferences": [
                {
                    "apiVersion": parent["apiVersion"],
                    "kind": parent["kind"],
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": template["spec"],
    }


def main(argv: list[str]) -> None:
    kubeconfig, namespace, template_path = argv[1:4]
    template = json.loads(Path(template_path).read_text())
    api = config.new_client_from_config(config_file=kubeconfig)
    custom = client.CustomObjectsApi(api)
    events = watch.Watch().stream(
        custom.list_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL
    )
    for event in events:
        if event["type"] != "ADDED":
            continue
        parent = event["object"]
        custom.patch_namespaced_custom_object(
            "ray.io",
            "v1",
            namespace,
            "rayservices",
            parent["metadata"]["name"],
            rayservice_for(template, parent),
            field_manager="bench-floor",
            force=True,
            _content_type="application/apply-patch+yaml",
        )


if __name__ == "__main__":
    main(sys.argv)
