"""Reconcile service: parse → resolve adapters → choose defaults → build → diff → apply → status.

The runner (controller/llmdeployment.py) calls :func:`sync` and writes what it returns. It
writes the child only when the built manifest differs from what is in the cluster, so resumes
and timers cost no writes at rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from kubellm_operator import names
from kubellm_operator.api.base import InvalidSpecError
from kubellm_operator.api.llmdeployment import (
    DefaultsStatus,
    LLMDeploymentSpec,
    LLMDeploymentStatus,
)
from kubellm_operator.api.refs import ObjectRef
from kubellm_operator.builders.defaults import BuildDefaults, recorded_in
from kubellm_operator.builders.rayservice import build_rayservice
from kubellm_operator.builders.serve_config import contract_args, replica_config
from kubellm_operator.config import OperatorConfig
from kubellm_operator.errors import KubeError
from kubellm_operator.service.adapters import resolve_adapters
from kubellm_operator.service.defaults import ADOPT_ANNOTATION, Choice, RolloutSlots, choose
from kubellm_operator.service.ports import LLMDeploymentCluster
from kubellm_operator.status.llmdeployment import Observed, awaits_head, derive
from kubellm_operator.status.patch import merge_patch
from kubellm_operator.status.pod import PodView
from kubellm_operator.status.raycluster import RayClusterView
from kubellm_operator.status.rayhead import DeployedApp, ServedModels, confirmed_verdict
from kubellm_operator.status.rayservice import RayServiceView, needs_confirmation

STATUS_FIELDS = tuple(f.alias or n for n, f in LLMDeploymentStatus.model_fields.items())
"""The operator owns the whole status of an LLMDeployment."""


def previous_defaults(ref: ObjectRef) -> DefaultsStatus | None:
    """The defaults its status says it is built with (None: not said, or unreadable)."""
    raw = ref.status.get("defaults")
    try:
        return DefaultsStatus.model_validate(raw) if raw else None
    except ValueError:
        return None


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


def status_patch(outcome: Outcome, before: Mapping[str, Any]) -> dict[str, Any]:
    """A merge patch that also clears fields the new status no longer has (endpoint...)."""
    return merge_patch(outcome.status.to_wire(), clear=STATUS_FIELDS)


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
    rayservice: RayServiceView, namespace: str, cluster: LLMDeploymentCluster
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


def probe_models(
    spec: LLMDeploymentSpec, ref: ObjectRef, cluster: LLMDeploymentCluster
) -> ServedModels:
    """Ask the Serve endpoint, as a client would (with the deployment's API key), which models
    it serves: an adapter is Loaded only once a serving replica lists it."""
    key = None
    if (secret := spec.api_key_secret_ref) is not None:
        key = cluster.read_secret_key(ref.namespace, secret.name, secret.key)
        if key is None:
            return ServedModels(error=f"Secret {secret.name} has no key {secret.key} to send")
    return cluster.served_models(ref.namespace, names.rayservice_name(ref.name), key)


def unlimited() -> RolloutSlots:
    """Slots for a caller that paces nothing (tests of one object)."""
    return RolloutSlots(limit=1 << 30, seed=tuple)


def choose_defaults(
    ref: ObjectRef,
    spec: LLMDeploymentSpec,
    current: Mapping[str, Any] | None,
    config: OperatorConfig,
    slots: RolloutSlots,
) -> Choice:
    """What this build takes of the operator's configuration (see service/defaults.py)."""
    key = (ref.namespace, ref.name)
    previous = previous_defaults(ref)
    return choose(
        key,
        recorded_in(current, spec),
        BuildDefaults.of(config, spec),
        asked=ref.annotations.get(ADOPT_ANNOTATION),
        paced=config.defaults_rollout == "paced",
        was_upgrading=(previous is not None and previous.state == "Upgrading") or slots.holds(key),
        slots=slots,
    )


def _with_defaults(
    status: LLMDeploymentStatus, choice: Choice | None, ref: ObjectRef
) -> LLMDeploymentStatus:
    """The status with what it is built with (Upgrading ends once Ready on the new ones).
    Without a choice (an invalid spec, a failed read, a missing claim) the last word is kept.
    The caller lets the slot go once a status that is not Upgrading is written (so the next
    deployment's Upgrading is never written before this one's Current)."""
    if choice is None:
        return status.model_copy(update={"defaults": previous_defaults(ref)})
    ready = bool(status.conditions) and status.conditions[0].status == "True"
    return status.model_copy(update={"defaults": choice.settled(ready).status()})


def holds_slot(status: LLMDeploymentStatus) -> bool:
    return status.defaults is not None and status.defaults.state == "Upgrading"


def sync(
    ref: ObjectRef,
    cluster: LLMDeploymentCluster,
    config: OperatorConfig,
    now: str,
    slots: RolloutSlots | None = None,
) -> Outcome:
    """Bring the RayService in line with the spec (if needed) and derive the status.

    An API failure does not escape: it is part of the outcome (and of the status, with the
    API's message), so the caller writes what is known and retries. ``slots`` pace moves to
    the operator's current defaults over all deployments (None: this object alone).
    """
    slots = slots if slots is not None else unlimited()
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
        spec = LLMDeploymentSpec.parse(ref.spec)
    except InvalidSpecError as exc:
        status = _with_defaults(derive(replace(observed, invalid=str(exc))), None, ref)
        return Outcome(status=status, invalid=str(exc), applied=False)
    observed = replace(observed, spec=spec)
    applied = False
    choice: Choice | None = None
    try:
        resolved, adapter_states = resolve_adapters(spec, ref.namespace, cluster, ref.name)
        observed = replace(observed, adapters=adapter_states)
        # An object that has never had a status has never been reconciled: its child is
        # applied straight away (an apply of an existing identical child changes nothing).
        current = (
            cluster.get_rayservice(ref.namespace, names.rayservice_name(ref.name))
            if ref.status
            else None
        )
        choice = choose_defaults(ref, spec, current, config, slots)
        desired = build_rayservice(ref.owner, spec, choice.use.applied_to(config), resolved)
        if current is not None:
            observed = replace(observed, rayservice=RayServiceView.parse(current))
        if current is None or not is_subset(desired, current):
            missing = {
                claim: path
                for claim, (path, *_) in spec.claims.items()
                if not cluster.claim_exists(ref.namespace, claim)
            }
            if missing:  # a cluster mounting it would never start: create nothing yet
                waiting = replace(
                    observed,
                    missing_claims=missing,
                    rayservice=RayServiceView.parse(current) if current else None,
                )
                return Outcome(
                    status=_with_defaults(derive(waiting), None, ref),
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
        status = _with_defaults(derive(replace(observed, api_error=exc)), None, ref)
        return Outcome(status=status, invalid=None, applied=applied, error=exc)
    status = _with_defaults(derive(observed), choice, ref)
    queued = status.defaults is not None and status.defaults.state == "Queued"
    return Outcome(
        status=status,
        invalid=None,
        applied=applied,
        recheck=awaits_head(observed),
        recheck_s=config.defaults_recheck_s if queued else None,
    )
