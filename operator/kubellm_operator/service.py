"""Reconcile service: parse → resolve adapters → build → diff → apply → derive status.

The refresher calls :func:`sync` and writes what it returns. It writes the child only when the built
manifest differs from what is in the cluster, so resumes and timers cost no writes at rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from kubellm_operator import names
from kubellm_operator.api.common import Condition
from kubellm_operator.api.llmdeployment import AdapterStatus, LLMDeploymentSpec, LLMDeploymentStatus
from kubellm_operator.builders.owner import Owner
from kubellm_operator.builders.rayservice import build_rayservice
from kubellm_operator.builders.serve_config import ResolvedAdapter, contract_args, replica_config
from kubellm_operator.children import (
    DeployedApp,
    PodView,
    RayClusterView,
    RayServiceView,
    ServedModels,
)
from kubellm_operator.claims import deployment_claims
from kubellm_operator.config import OperatorConfig
from kubellm_operator.errors import KubeError
from kubellm_operator.handoffs import HandOff
from kubellm_operator.parse import InvalidSpecError, parse_spec
from kubellm_operator.ports import ClusterPort
from kubellm_operator.refs import ParentRef
from kubellm_operator.status import Observed, awaits_head, derive
from kubellm_operator.verdicts import confirmed_verdict, needs_confirmation


@dataclass(frozen=True)
class ObjectRef(ParentRef):
    """The LLMDeployment being reconciled, as read from its body."""

    def previous_conditions(self) -> tuple[Condition, ...]:
        raw = self.status.get("conditions") or []
        return tuple(Condition.model_validate(c) for c in raw)


@dataclass(frozen=True)
class Outcome:
    status: LLMDeploymentStatus
    invalid: str | None
    applied: bool
    error: KubeError | None = None
    """An API call failed: the status says so, and the caller retries with backoff."""
    recheck: bool = False
    recheck_s: float | None = None
    """Reconcile again this many seconds from now (a claim it waits for may be created)."""
    """Done for now, but Ready waits on a Ray head: reconcile again soon."""

    def status_changed(self, current: Mapping[str, Any]) -> bool:
        return self.status.to_wire() != dict(current)


def _other_base(
    spec: LLMDeploymentSpec, job: str, base_uri: str, base_revision: str | None
) -> str | None:
    """Why a job's adapter cannot be served here (trained on another model), or None."""
    if (base_uri, base_revision) == (spec.model.uri, spec.model.revision):
        return None
    return (
        f"FineTuneJob {job} trained on {base_uri}, but this deployment serves "
        f"{spec.model.uri}: not loaded"
    )


def _handed_off(
    spec: LLMDeploymentSpec, handoffs: tuple[HandOff, ...], taken: set[str]
) -> tuple[list[ResolvedAdapter], list[AdapterStatus]]:
    """FineTuneJobs that name this deployment in deployTo: served once Succeeded, if they
    were trained on its model and their adapter's name is free."""
    resolved: list[ResolvedAdapter] = []
    states: list[AdapterStatus] = []
    for h in handoffs:
        if (message := _other_base(spec, h.job, h.base_uri, h.base_revision)) is not None:
            states.append(AdapterStatus(name=h.adapter_name, state="Failed", message=message))
        elif h.adapter_name in taken:
            message = (
                f"FineTuneJob {h.job}: the name {h.adapter_name} is taken "
                "(give a new version a new output.adapterName)"
            )
            states.append(AdapterStatus(name=h.adapter_name, state="Failed", message=message))
        elif h.adapter_uri is None:
            message = f"waiting for FineTuneJob {h.job} (phase {h.phase or 'Pending'})"
            states.append(AdapterStatus(name=h.adapter_name, state="Pending", message=message))
        else:
            resolved.append(ResolvedAdapter(h.adapter_name, h.adapter_uri))
            states.append(AdapterStatus(name=h.adapter_name, state="Pending", uri=h.adapter_uri))
        taken.add(h.adapter_name)
    return resolved, states


def resolve_adapters(
    spec: LLMDeploymentSpec, namespace: str, cluster: ClusterPort, name: str = ""
) -> tuple[tuple[ResolvedAdapter, ...], tuple[AdapterStatus, ...]]:
    """Adapters with a known location, and the state of each requested adapter (those the
    spec lists, then those FineTuneJobs hand off)."""
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
        base = ((job or {}).get("spec") or {}).get("baseModel") or {}
        refused = job and _other_base(
            spec, job_name, str(base.get("uri", "")), base.get("revision")
        )
        if refused:
            states.append(AdapterStatus(name=adapter.name, state="Failed", message=refused))
        elif job is None:
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
    taken = {a.name for a in spec.adapters} | {spec.model.default_served_name()}
    extra, extra_states = _handed_off(spec, cluster.list_handoffs(namespace, name), taken)
    return (*resolved, *extra), (*states, *extra_states)


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


def _observe_clusters(
    rayservice: RayServiceView, namespace: str, cluster: ClusterPort
) -> dict[str, RayClusterView]:
    """The RayClusters of both sides, read from the clusters themselves: KubeRay does not
    rewrite its copy in the RayService when only the cluster changed (v1.6.2)."""
    found: dict[str, RayClusterView] = {}
    for side in (rayservice.active, rayservice.pending):
        if side is None or side.ray_cluster_name in found:
            continue
        obj = cluster.get_raycluster(namespace, side.ray_cluster_name)
        if obj is not None:
            found[side.ray_cluster_name] = RayClusterView.parse(obj)
    return found


def probe_models(spec: LLMDeploymentSpec, ref: ObjectRef, cluster: ClusterPort) -> ServedModels:
    """Ask the Serve endpoint, as a client would (with the deployment's API key), which models
    it serves: an adapter is Loaded only once a serving replica lists it."""
    key = None
    if (secret := spec.api_key_secret_ref) is not None:
        key = cluster.read_secret_key(ref.namespace, secret.name, secret.key)
        if key is None:
            return ServedModels(error=f"Secret {secret.name} has no key {secret.key} to send")
    return cluster.served_models(ref.namespace, names.rayservice_name(ref.name), key)


def sync(ref: ObjectRef, cluster: ClusterPort, config: OperatorConfig, now: str) -> Outcome:
    """Bring the RayService in line with the spec (if needed) and derive the status.

    An API failure does not escape: it is part of the outcome (and of the status, with the
    API's message), so the caller writes what is known and retries.
    """
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
        status = derive(replace(observed, invalid=str(exc)))
        return Outcome(status=status, invalid=str(exc), applied=False)
    observed = replace(observed, spec=spec)
    applied = False
    try:
        resolved, adapter_states = resolve_adapters(spec, ref.namespace, cluster, ref.name)
        observed = replace(observed, adapters=adapter_states)
        desired = build_rayservice(Owner(ref.name, ref.namespace, ref.uid), spec, config, resolved)
        # An object that has never had a status has never been reconciled: its child is
        # applied straight away (an apply of an existing identical child changes nothing).
        current = (
            cluster.get_rayservice(ref.namespace, names.rayservice_name(ref.name))
            if ref.status
            else None
        )
        if current is not None:
            observed = replace(observed, rayservice=RayServiceView.parse(current))
        if current is None or not is_subset(desired, current):
            missing = {
                claim: path
                for claim, path in deployment_claims(spec).items()
                if not cluster.claim_exists(ref.namespace, claim)
            }
            if missing:  # a cluster mounting it would never start: create nothing yet
                waiting = replace(
                    observed,
                    missing_claims=missing,
                    rayservice=RayServiceView.parse(current) if current else None,
                )
                return Outcome(
                    status=derive(waiting),
                    invalid=None,
                    applied=False,
                    recheck_s=config.claim_recheck_s,
                )
            current = cluster.apply(desired)
            applied = True
        rayservice = RayServiceView.parse(current)
        pods = cluster.list_pending_pods(ref.namespace, names.pod_selector(ref.name))
        observed = replace(
            observed,
            rayservice=rayservice,
            clusters=_observe_clusters(rayservice, ref.namespace, cluster),
            pods=tuple(PodView.parse(p) for p in pods),
            expected_args=contract_args(spec),
            expected_user_config=replica_config(spec, resolved),
        )
        if needs_confirmation(rayservice) and rayservice.active is not None:
            details = cluster.serve_details(ref.namespace, rayservice.active.ray_cluster_name)
            observed = replace(observed, deployed=DeployedApp.parse(details))
            confirmed = confirmed_verdict(
                rayservice, observed.deployed, observed.expected_args, observed.expected_user_config
            )
            if resolved and confirmed.ok:
                observed = replace(observed, listing=probe_models(spec, ref, cluster))
    except KubeError as exc:
        status = derive(replace(observed, api_error=exc))
        return Outcome(status=status, invalid=None, applied=applied, error=exc)
    return Outcome(
        status=derive(observed), invalid=None, applied=applied, recheck=awaits_head(observed)
    )
