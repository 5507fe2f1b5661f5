"""Operator-level build defaults, recorded per deployment and rolled out only when asked.

The runtime image, Ray version, head resources and shm size come from the operator's
configuration. Were every build to use the configuration's current values, an operator upgrade
that changes one of them would change every RayService at once: each a NewCluster upgrade that
needs twice its GPUs, all together. So each RayService records the defaults it was built with
(annotation ``kubellm.io/build-defaults``; a RayService from before the annotation is read from
its own fields), and later builds reuse them. A deployment moves to the operator's current
defaults only when asked: its annotation ``kubellm.io/adopt-defaults`` names the revision
(or ``latest``), or the operator's ``defaults_rollout`` is ``paced``. Either way at most
``defaults_rollout_max_in_flight`` deployments upgrade at once, and a slot frees only when its
deployment is Ready on the new defaults (a failed rollout stops the fleet's).

Pure: the slots are a lock and a set, seeded once from what the objects' status says.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from kubellm_operator import names
from kubellm_operator.api.llmdeployment import DefaultsState, DefaultsStatus, LLMDeploymentSpec
from kubellm_operator.builders.raycluster import SHM_VOLUME
from kubellm_operator.config import OperatorConfig

BUILD_ANNOTATION = f"{names.GROUP}/build-defaults"
ADOPT_ANNOTATION = f"{names.GROUP}/adopt-defaults"
LATEST = "latest"
_FIELDS = ("runtime_image", "ray_version", "head_cpu", "head_memory", "shm_size")
_WIRE = {"runtime_image": "runtimeImage", "ray_version": "rayVersion", "head_cpu": "headCpu",
         "head_memory": "headMemory", "shm_size": "shmSize"}  # fmt: skip

Key = tuple[str, str]


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


@dataclass
class RolloutSlots:
    """At most ``limit`` deployments moving to new defaults at once. ``seed`` lists those
    that were upgrading when the operator started (their status says so); read once."""

    limit: int
    seed: Callable[[], Iterable[Key]]
    _held: set[Key] = field(default_factory=set)
    _seeded: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _load(self) -> None:
        if not self._seeded:
            self._held |= set(self.seed())
            self._seeded = True

    def take(self, key: Key) -> bool:
        """A slot for ``key`` (kept if it holds one already); False when all are taken."""
        with self._lock:
            self._load()
            if key in self._held or len(self._held) < self.limit:
                self._held.add(key)
                return True
            return False

    def holds(self, key: Key) -> bool:
        with self._lock:
            return key in self._held

    def hold(self, key: Key) -> None:
        """``key`` is upgrading already (found so after a restart): count it."""
        with self._lock:
            self._load()
            self._held.add(key)

    def release(self, key: Key) -> None:
        with self._lock:
            self._held.discard(key)

    def busy(self) -> int:
        with self._lock:
            return len(self._held)


@dataclass(frozen=True)
class Choice:
    """The defaults this reconcile builds with, and what the status says about them."""

    use: BuildDefaults
    latest: BuildDefaults
    state: DefaultsState
    message: str = ""

    def status(self) -> DefaultsStatus:
        return DefaultsStatus(
            state=self.state,
            revision=self.use.revision,
            latest_revision=self.latest.revision,
            runtime_image=self.use.runtime_image,
            ray_version=self.use.ray_version,
            message=self.message,
        )

    def settled(self, ready: bool) -> Choice:
        """Upgrading ends once the deployment is Ready on the new defaults."""
        if self.state == "Upgrading" and ready:
            return Choice(self.use, self.latest, "Current")
        return self


def choose(
    key: Key,
    recorded: BuildDefaults | None,
    latest: BuildDefaults,
    *,
    asked: str | None,
    paced: bool,
    was_upgrading: bool,
    slots: RolloutSlots,
) -> Choice:
    """``asked``: the object's adopt-defaults annotation; ``paced``: the operator rolls every
    deployment; ``was_upgrading``: the last status said Upgrading (not Ready on them yet)."""
    recorded = recorded.aligned(latest) if recorded is not None else None
    if recorded is None or recorded == latest:
        if was_upgrading:
            slots.hold(key)
            return Choice(latest, latest, "Upgrading", "moving to the operator's defaults")
        return Choice(latest, latest, "Current")
    wanted = paced or asked in (LATEST, latest.revision)
    if not wanted:
        hint = (
            f"annotate {ADOPT_ANNOTATION}={latest.revision} (or run the operator with "
            "defaultsRollout paced) to move to them"
        )
        if asked:
            hint = f"{ADOPT_ANNOTATION}={asked} names no revision the operator has; " + hint
        return Choice(
            recorded,
            latest,
            "Outdated",
            f"built with defaults {recorded.describe()}; the operator's are "
            f"{latest.describe()}: {hint}",
        )
    if slots.take(key):
        return Choice(
            latest,
            latest,
            "Upgrading",
            f"moving from defaults {recorded.describe()} to {latest.describe()}",
        )
    return Choice(
        recorded,
        latest,
        "Queued",
        f"waiting for a rollout slot: {slots.busy()} of {slots.limit} deployments are moving "
        f"to defaults {latest.revision}",
    )
