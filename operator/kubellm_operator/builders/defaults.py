"""The operator-level values a build takes when the spec names none, and how a RayService
records the ones it was built with (service/defaults.py rolls them out)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from kubellm_operator import names
from kubellm_operator.api.llmdeployment import LLMDeploymentSpec
from kubellm_operator.builders.storage import SHM_VOLUME
from kubellm_operator.config import OperatorConfig

BUILD_ANNOTATION = f"{names.GROUP}/build-defaults"
_FIELDS = ("runtime_image", "ray_version", "head_cpu", "head_memory", "shm_size")
_WIRE = {"runtime_image": "runtimeImage", "ray_version": "rayVersion", "head_cpu": "headCpu",
         "head_memory": "headMemory", "shm_size": "shmSize"}  # fmt: skip


@dataclass(frozen=True)
class BuildDefaults:
    """The configuration values a build takes when the spec names none. A value the spec
    overrides (spec.image, spec.rayVersion) is None: it does not depend on the operator."""

    runtime_image: str | None
    ray_version: str | None
    head_cpu: str
    head_memory: str
    shm_size: str

    @classmethod
    def of(cls, config: OperatorConfig, spec: LLMDeploymentSpec) -> BuildDefaults:
        return cls(
            runtime_image=None if spec.image else config.runtime_image,
            ray_version=None if spec.ray_version else config.ray_version,
            head_cpu=config.head_cpu,
            head_memory=config.head_memory,
            shm_size=config.shm_size,
        )

    @property
    def revision(self) -> str:
        return hashlib.sha256(self.to_annotation().encode()).hexdigest()[:10]

    def to_annotation(self) -> str:
        wire = {_WIRE[name]: getattr(self, name) for name in _FIELDS}
        return json.dumps(wire, sort_keys=True, separators=(",", ":"))

    def applied_to(self, config: OperatorConfig) -> OperatorConfig:
        """``config`` building with these values (a value the spec overrides is left)."""
        update = {name: getattr(self, name) for name in _FIELDS if getattr(self, name)}
        return config.model_copy(update=update)

    def aligned(self, latest: BuildDefaults) -> BuildDefaults:
        """These defaults for the current spec: a value the spec now overrides is None (as in
        ``latest``), one it no longer overrides is the operator's (the spec's change)."""
        return replace(
            self,
            runtime_image=_pick(self.runtime_image, latest.runtime_image),
            ray_version=_pick(self.ray_version, latest.ray_version),
        )

    def describe(self) -> str:
        image = self.runtime_image or "the spec's image"
        ray = self.ray_version or "the spec's"
        return f"{self.revision} (image {image}, Ray {ray})"


def _pick(mine: str | None, latest: str | None) -> str | None:
    return None if latest is None else mine or latest


def recorded_in(
    rayservice: Mapping[str, Any] | None, spec: LLMDeploymentSpec
) -> BuildDefaults | None:
    """What an existing RayService was built with: its annotation, or (a RayService built
    before it was written) its own fields. None when there is none or it cannot be read."""
    if rayservice is None:
        return None
    meta = rayservice.get("metadata") or {}
    raw = (meta.get("annotations") or {}).get(BUILD_ANNOTATION)
    if raw is not None:
        try:
            wire = json.loads(raw)
            values = {name: wire.get(_WIRE[name]) for name in _FIELDS}
            return BuildDefaults(**values)
        except (ValueError, TypeError, AttributeError):
            return None
    return _from_fields(rayservice, spec)


def _from_fields(rayservice: Mapping[str, Any], spec: LLMDeploymentSpec) -> BuildDefaults | None:
    try:
        cluster = rayservice["spec"]["rayClusterConfig"]
        pod = cluster["headGroupSpec"]["template"]["spec"]
        head = pod["containers"][0]
        shm = next(v for v in pod["volumes"] if v["name"] == SHM_VOLUME)
        return BuildDefaults(
            runtime_image=None if spec.image else str(head["image"]),
            ray_version=None if spec.ray_version else str(cluster["rayVersion"]),
            head_cpu=str(head["resources"]["limits"]["cpu"]),
            head_memory=str(head["resources"]["limits"]["memory"]),
            shm_size=str(shm["emptyDir"]["sizeLimit"]),
        )
    except (KeyError, IndexError, TypeError, StopIteration):
        return None
