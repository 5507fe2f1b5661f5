"""rayClusterConfig of an LLMDeployment: a CPU head and GPU workers on the requested pool."""

from __future__ import annotations

from typing import Any

from kubellm_operator import names
from kubellm_operator.api.llmdeployment import LLMDeploymentSpec
from kubellm_operator.builders import placement, storage
from kubellm_operator.config import OperatorConfig
from kubellm_runtime.contract import API_KEY_ENV, MODEL_CACHE_DIR, MODEL_CACHE_DIR_ENV

# Ports of the Ray head container (KubeRay wires its Services to these names).
HEAD_PORTS = (
    {"containerPort": 6379, "name": "gcs-server"},
    {"containerPort": 8265, "name": "dashboard"},
    {"containerPort": 10001, "name": "client"},
    {"containerPort": names.SERVE_PORT, "name": "serve"},
)


def _env(spec: LLMDeploymentSpec, *, secrets: bool) -> list[dict[str, Any]]:
    # User order is kept: a value may refer to an earlier variable as $(NAME).
    out = [e.to_wire() for e in spec.env]
    if secrets and spec.api_key_secret_ref is not None:
        ref = spec.api_key_secret_ref
        out.append(
            {"name": API_KEY_ENV, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}}
        )
    return out


def _env_from(spec: LLMDeploymentSpec) -> list[dict[str, Any]]:
    ref = spec.model.secret_ref
    return [{"secretRef": {"name": ref.name}}] if ref else []


def _container(
    name: str,
    spec: LLMDeploymentSpec,
    config: OperatorConfig,
    resources: dict[str, Any],
    *,
    secrets: bool,
) -> dict[str, Any]:
    """``secrets``: the model's credentials and the API key, which only the workers (where
    the model replicas run) need; the head runs Ray's control plane and the Serve proxy."""
    container: dict[str, Any] = {
        "name": name,
        "image": spec.image or config.runtime_image,
        "resources": {"limits": dict(resources), "requests": dict(resources)},
        "volumeMounts": [storage.shm_mount()],
    }
    env = _env(spec, secrets=secrets)
    if env:
        container["env"] = env
    env_from = _env_from(spec) if secrets else []
    if env_from:
        container["envFrom"] = env_from
    return container


def _pod_metadata(owner: str) -> dict[str, Any]:
    return {"labels": names.child_labels(names.LABEL_LLMDEPLOYMENT, owner)}


def head_group(owner: str, spec: LLMDeploymentSpec, config: OperatorConfig) -> dict[str, Any]:
    """The head runs Ray's control plane and the Serve proxy, no GPUs and no model replicas."""
    container = _container(
        "ray-head",
        spec,
        config,
        {"cpu": config.head_cpu, "memory": config.head_memory},
        secrets=False,
    )
    container["ports"] = [dict(p) for p in HEAD_PORTS]
    pod: dict[str, Any] = {"containers": [container], "volumes": [storage.shm_volume(config)]}
    if spec.placement.priority_class_name:
        pod["priorityClassName"] = spec.placement.priority_class_name
    return {
        # num-cpus 0: Serve places model replicas on the GPU workers, never on the head.
        "rayStartParams": {"dashboard-host": "0.0.0.0", "num-cpus": "0", "num-gpus": "0"},  # noqa: S104
        "template": {"metadata": _pod_metadata(owner), "spec": pod},
    }


def worker_pod_counts(spec: LLMDeploymentSpec, config: OperatorConfig) -> tuple[int, int, int]:
    """(initial, min, max) worker pods: one pod per pipeline stage of each model replica.

    KubeRay never resizes an existing RayService cluster when only worker counts change, so
    after creation the Ray autoscaler (always on) adds and removes workers to fit the Serve
    replicas; the bounds only have to contain every count the spec may ask for.
    """
    stages = spec.resources.pipeline_parallel_size
    if spec.autoscaling is None:
        return spec.replicas * stages, 0, max(config.max_replicas, spec.replicas) * stages
    return (
        spec.replicas * stages,
        spec.autoscaling.min_replicas * stages,
        spec.autoscaling.max_replicas * stages,
    )


def worker_group(owner: str, spec: LLMDeploymentSpec, config: OperatorConfig) -> dict[str, Any]:
    """GPU workers: each pod holds one pipeline stage, i.e. tensorParallelSize GPUs on one node."""
    res = spec.resources
    gpus_per_pod = res.tensor_parallel_size if res.gpus_per_replica else 0
    limits: dict[str, Any] = {"cpu": res.cpu, "memory": res.memory}
    if gpus_per_pod:
        limits[config.gpu_resource] = str(gpus_per_pod)
    container = _container("ray-worker", spec, config, limits, secrets=True)
    container["volumeMounts"] += storage.model_mounts(spec)
    container["env"] = [
        *container.get("env", []),
        {"name": MODEL_CACHE_DIR_ENV, "value": MODEL_CACHE_DIR},
    ]
    pod: dict[str, Any] = {
        "containers": [container],
        "volumes": [storage.shm_volume(config), *storage.model_volumes(spec, config)],
    }
    pod |= placement.worker_pod_fields(
        spec.placement, res.gpu_type, config, gpus=bool(gpus_per_pod)
    )
    replicas, minimum, maximum = worker_pod_counts(spec, config)
    return {
        "groupName": "gpu" if gpus_per_pod else "cpu",
        "replicas": replicas,
        "minReplicas": minimum,
        "maxReplicas": maximum,
        "rayStartParams": {},
        "template": {"metadata": _pod_metadata(owner), "spec": pod},
    }


def ray_cluster_config(
    owner: str, spec: LLMDeploymentSpec, config: OperatorConfig
) -> dict[str, Any]:
    return {
        "rayVersion": spec.ray_version or config.ray_version,
        # Serve replicas drive the worker count (kubectl scale changes only serveConfigV2).
        "enableInTreeAutoscaling": True,
        "headGroupSpec": head_group(owner, spec, config),
        "workerGroupSpecs": [worker_group(owner, spec, config)],
    }
