"""Which FineTuneJobs hand their adapter to which LLMDeployment (``spec.deployTo``), kept from
the FineTuneJob watch so an LLMDeployment's reconcile lists nothing.

The deployment serves a hand-off's adapter once its job has Succeeded, under the job's
``output.adapterName`` (default: the job's name), if it was trained on the model the deployment
serves. The user's LLMDeployment spec is never edited (a GitOps tool would revert it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubellm_operator.api.refs import Key


@dataclass(frozen=True)
class HandOff:
    """One job's adapter, offered to one deployment."""

    job: str
    adapter_name: str
    adapter_uri: str | None
    """Set once the job has published it."""
    base_uri: str
    base_revision: str | None
    phase: str | None

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> tuple[str, HandOff] | None:
        """(the deployment it goes to, the hand-off), or None without ``deployTo``."""
        spec, status = body.get("spec") or {}, body.get("status") or {}
        target = spec.get("deployTo")
        if not target:
            return None
        name = str((body.get("metadata") or {}).get("name", ""))
        base = spec.get("baseModel") or {}
        return str(target), cls(
            job=name,
            adapter_name=str((spec.get("output") or {}).get("adapterName") or name),
            adapter_uri=status.get("adapterUri") if status.get("phase") == "Succeeded" else None,
            base_uri=str(base.get("uri", "")),
            base_revision=base.get("revision"),
            phase=status.get("phase"),
        )


@dataclass
class HandOffIndex:
    """Hand-offs by deployment; written by the watch handler, read by reconciles."""

    by_target: dict[Key, dict[str, HandOff]] = field(default_factory=dict)
    target_of: dict[Key, str] = field(default_factory=dict)
    primed: set[str] = field(default_factory=set)
    """Namespaces listed once (so a deployment reconciled before the FineTuneJob watch has
    delivered its jobs does not drop their adapters)."""

    def job_changed(self, body: Mapping[str, Any], deleted: bool) -> set[Key]:
        """Record the job; the deployments whose hand-offs changed (to reconcile them)."""
        meta = body.get("metadata") or {}
        namespace, job = str(meta.get("namespace", "")), str(meta.get("name", ""))
        parsed = None if deleted else HandOff.parse(body)
        affected: set[Key] = set()
        before = self.target_of.pop((namespace, job), None)
        if before is not None:
            offered = self.by_target.get((namespace, before), {})
            old = offered.pop(job, None)
            if not offered:
                self.by_target.pop((namespace, before), None)
            if parsed is None or parsed[0] != before or parsed[1] != old:
                affected.add((namespace, before))
        if parsed is not None:
            target, handoff = parsed
            self.by_target.setdefault((namespace, target), {})[job] = handoff
            self.target_of[(namespace, job)] = target
            if before != target:
                affected.add((namespace, target))
        return affected

    def for_deployment(self, namespace: str, name: str) -> tuple[HandOff, ...]:
        offered = self.by_target.get((namespace, name), {})
        return tuple(offered[job] for job in sorted(offered))

    def jobs_for(self, namespace: str, name: str) -> list[Key]:
        """The jobs handing off to a deployment (reconciled when its status changes)."""
        return [(namespace, job) for job in sorted(self.by_target.get((namespace, name), {}))]
