"""Small KubeRay manifests the cluster-proof tests create (plain dicts: they are test data)."""

from __future__ import annotations

from typing import Any

from kubellm_dev.kwok import GPU_RESOURCE, POOL_LABEL

RAY_VERSION = "2.60.0"
RAY_IMAGE = f"rayproject/ray:{RAY_VERSION}"
GPU_TOLERATION = {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}


def head_group() -> dict[str, Any]:
    return {
        "rayStartParams": {},
        "template": {
            "spec": {
                "containers": [
                    {
                        "name": "ray-head",
                        "image": RAY_IMAGE,
                        "resources": {"limits": {"cpu": "1", "memory": "2Gi"}},
                    }
                ]
            }
        },
    }


def worker_group(
    *, gpus: int, pool: str | None, tolerate_gpu: bool, replicas: int = 1
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "containers": [
            {
                "name": "ray-worker",
                "image": RAY_IMAGE,
                "resources": {"limits": {"cpu": "1", "memory": "2Gi", GPU_RESOURCE: str(gpus)}},
            }
        ]
    }
    if pool:
        spec["nodeSelector"] = {POOL_LABEL: pool}
    if tolerate_gpu:
        spec["tolerations"] = [GPU_TOLERATION]
    return {
        "groupName": "gpu",
        "replicas": replicas,
        "minReplicas": replicas,
        "maxReplicas": replicas,
        "rayStartParams": {},
        "template": {"spec": spec},
    }


def ray_cluster(name: str, workers: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": name},
        "spec": {
            "rayVersion": RAY_VERSION,
            "headGroupSpec": head_group(),
            "workerGroupSpecs": workers,
        },
    }


def ray_service(name: str, app: str, import_path: str) -> dict[str, Any]:
    serve_config = (
        "applications:\n"
        f"  - name: {app}\n"
        f"    import_path: {import_path}\n"
        f"    route_prefix: /{app}\n"
    )
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": {"name": name},
        "spec": {
            "serveConfigV2": serve_config,
            "rayClusterConfig": {"rayVersion": RAY_VERSION, "headGroupSpec": head_group()},
        },
    }


def ray_job(name: str, entrypoint: str) -> dict[str, Any]:
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayJob",
        "metadata": {"name": name},
        "spec": {
            "submissionMode": "HTTPMode",
            "entrypoint": entrypoint,
            "rayClusterSpec": {"rayVersion": RAY_VERSION, "headGroupSpec": head_group()},
        },
    }
