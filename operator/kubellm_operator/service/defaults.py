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

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from kubellm_operator import names
from kubellm_operator.api.llmdeployment import DefaultsState, DefaultsStatus
from kubellm_operator.api.refs import Key
from kubellm_operator.builders.defaults import BuildDefaults

ADOPT_ANNOTATION = f"{names.GROUP}/adopt-defaults"
LATEST = "latest"


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
