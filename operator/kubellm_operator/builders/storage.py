"""Volumes the runtime reads models from: pvc:// claims (read-only) and the download cache.

pvc://claim/path sources are mounted at ``/mnt/pvc/<claim>``, where the runtime resolves them.
s3:// and gs:// sources are downloaded into the model cache: an emptyDir per pod by default,
or (operator setting) a hostPath so replicas on one node download a model once.
"""

from __future__ import annotations

import hashlib
from typing import Any

from kubellm_operator.api.llmdeployment import LLMDeploymentSpec
from kubellm_operator.config import OperatorConfig
from kubellm_runtime.contract import MODEL_CACHE_DIR, PVC_ROOT

CACHE_VOLUME = "model-cache"
SHM_VOLUME = "dshm"
SHM_DIR = "/dev/shm"  # noqa: S108 - the pod's own memory volume, not a shared temp dir


def volume_name(claim: str) -> str:
    name = f"pvc-{claim}"
    if len(name) <= 63:  # noqa: PLR2004 - a DNS-1123 label
        return name
    return f"pvc-{claim[:48]}-{hashlib.sha256(claim.encode()).hexdigest()[:10]}"


def model_volumes(spec: LLMDeploymentSpec, config: OperatorConfig) -> list[dict[str, Any]]:
    volumes = [cache_volume(config)]
    volumes += [
        {"name": volume_name(c), "persistentVolumeClaim": {"claimName": c, "readOnly": True}}
        for c in sorted(spec.claims)
    ]
    return volumes


def model_mounts(spec: LLMDeploymentSpec) -> list[dict[str, Any]]:
    mounts: list[dict[str, Any]] = [{"name": CACHE_VOLUME, "mountPath": MODEL_CACHE_DIR}]
    mounts += [
        {"name": volume_name(c), "mountPath": f"{PVC_ROOT}/{c}", "readOnly": True}
        for c in sorted(spec.claims)
    ]
    return mounts


def cache_volume(config: OperatorConfig) -> dict[str, Any]:
    cache: dict[str, Any] = (
        {"hostPath": {"path": config.model_cache_host_path, "type": "DirectoryOrCreate"}}
        if config.model_cache == "hostPath"
        else {"emptyDir": {}}
    )
    return {"name": CACHE_VOLUME, **cache}


def claim_volumes(
    read_only: list[str], writable: list[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Volumes and mounts for the claims named (a claim both read and written is mounted
    writable, once)."""
    modes = {c: True for c in read_only} | {c: False for c in writable}
    volumes, mounts = [], []
    for claim in sorted(modes):
        name, ro = volume_name(claim), modes[claim]
        volumes.append(
            {"name": name, "persistentVolumeClaim": {"claimName": claim, "readOnly": ro}}
        )
        mount: dict[str, Any] = {"name": name, "mountPath": f"{PVC_ROOT}/{claim}"}
        if ro:
            mount["readOnly"] = True
        mounts.append(mount)
    return volumes, mounts


def shm_volume(config: OperatorConfig) -> dict[str, Any]:
    """The shared-memory volume: memory of the configured size (NCCL, vLLM, Ray's objects)."""
    return {"name": SHM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": config.shm_size}}


def shm_mount() -> dict[str, Any]:
    return {"name": SHM_VOLUME, "mountPath": SHM_DIR}
