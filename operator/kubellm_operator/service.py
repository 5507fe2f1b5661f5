"""Reconcile service: parse → resolve adapters → build → diff → apply → derive status.

Handlers call :func:`sync` and write what it returns. It writes the child only when the built
manifest differs from what is in the cluster, so resumes and timers cost no writes at rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from kubellm_operator import names
from kubellm_operator.api.common import Condition
from kubellm_operator.api.llmdeployment import AdapterStatus, LLMDeploymentSpec, LLMDeploymentStatus
from kubellm_operator.builders.rayservice import Owner, build_rayservice
from kubellm_operator.builders.serve_config import ResolvedAdapter
from kubellm_operator.config import OperatorConfig
from kubellm_operator.parse import InvalidSpecError, parse_spec
from kubellm_operator.ports import ClusterPort
from kubellm_operator.status import Observed, derive, serving_cluster_name


@dataclass(frozen=True)
class ObjectRef:
    """The LLMDeployment being reconciled, as read from its body."""

    name: str
    namespace: str
    uid: str
    generation: int
    spec: Mapping[str, Any]
    status: Mapping[str, Any]

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> ObjectRef:
        meta = body["metadata"]
        return cls(
            name=meta["name"],
            namespace=meta["namespace"],
            uid=meta["uid"],
            generation=int(meta.get("generation") or 0),
            spec=body.get("spec") or {},
            status=body.get("status") or {},
        )

    def previous_conditions(self) -> tuple[Condition, ...]:
        raw = self.status.get("conditions") or []
        return tuple(Condition.model_validate(c) for c in raw)


@dataclass(frozen=True)
class Outcome:
    status: LLMDeploymentStatus
    invalid: str | None
    applied: bool

    def status_changed(self, current: Mapping[str, Any]) -> bool:
        return self.status.to_wire() != dict(current)


def resolve_adapters(
    spec: LLMDeploymentSpec, namespace: str, cluster: ClusterPort
) -> tuple[tuple[ResolvedAdapter, ...], tuple[AdapterStatus, ...]]:
    """Adapters with a known location, and the state of each requested adapter."""
    resolved: list[ResolvedAdapter] = []
    states: list[AdapterStatus] = []
    for adapter in spec.adapters:
        if adapter.uri is not None:
            resolved.append(ResolvedAdapter(adapter.name, adapter.uri))
            states.append(AdapterStatus(name=adapter.name, state="Pending", uri=adapter.uri))
            continue
        job_name = adapter.from_fine_tune_job or ""
        job = cluster.get_finetunejob(namespace, job_name)
        job_status = (job or {}).get("status") or {}
        uri = job_status.get("adapterUri")
        if job is None:
            states.append(
                AdapterStatus(
                    name=adapter.name, state="Pending", message=f"FineTuneJob {job_name} not found"
                )
            )
        elif job_status.get("phase") == "Failed":
            states.append(
                AdapterStatus(
                    name=adapter.name, state="Failed", message=f"FineTuneJob {job_name} failed"
                )
            )
        elif uri:
            resolved.append(ResolvedAdapter(adapter.name, uri))
            states.append(AdapterStatus(name=adapter.name, state="Pending", uri=uri))
        else:
            phase = job_status.get("phase") or "Pending"
            states.append(
                AdapterStatus(
                    name=adapter.name,
                    state="Pending",
                    message=f"waiting for FineTuneJob {job_name} (phase {phase})",
                )
            )
    return tuple(resolved), tuple(states)


def is_subset(desired: Any, current: Any) -> bool:
    """Whether everything we set is already in ``current`` (the server adds defaults and status)."""
    if isinstance(desired, dict):
        return isinstance(current, dict) and all(
            key in current and is_subset(value, current[key]) for key, value in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(current, list)
            and len(desired) == len(current)
            and all(is_subset(d, c) for d, c in zip(desired, current, strict=True))
        )
    return bool(desired == current)


def sync(
    ref: ObjectRef,
    cluster: ClusterPort,
    config: OperatorConfig,
    now: str,
    *,
    child: dict[str, Any] | None = None,
    raycluster: dict[str, Any] | None = None,
) -> Outcome:
    """Bring the RayService in line with the spec (if needed) and derive the status."""
    observed = Observed(
        name=ref.name,
        namespace=ref.namespace,
        generation=ref.generation,
        now=now,
        spec=None,
        previous=ref.previous_conditions(),
        cluster_domain=config.cluster_domain,
    )
    try:
        spec = parse_spec(ref.spec)
    except InvalidSpecError as exc:
        return Outcome(
            status=derive(replace(observed, invalid=str(exc))), invalid=str(exc), applied=False
        )
    resolved, adapter_states = resolve_adapters(spec, ref.namespace, cluster)
    desired = build_rayservice(Owner(ref.name, ref.namespace, ref.uid), spec, config, resolved)
    current = child or cluster.get_rayservice(ref.namespace, names.rayservice_name(ref.name))
    applied = current is None or not is_subset(desired, current)
    if applied:
        current = cluster.apply(desired)
    pods = cluster.list_pods(ref.namespace, names.pod_selector(ref.name))
    # KubeRay copies the cluster's status into the RayService but does not rewrite the copy
    # when only the cluster changed (v1.6.2), so worker readiness is read from the RayCluster.
    # A RayCluster event hands its body in; it is used when it is the serving cluster.
    cluster_name = serving_cluster_name(current)
    if cluster_name is None:
        raycluster = None
    elif raycluster is None or raycluster.get("metadata", {}).get("name") != cluster_name:
        raycluster = cluster.get_raycluster(ref.namespace, cluster_name)
    status = derive(
        replace(
            observed,
            spec=spec,
            rayservice=current,
            raycluster=raycluster,
            pods=tuple(pods),
            adapters=adapter_states,
        )
    )
    return Outcome(status=status, invalid=None, applied=applied)
