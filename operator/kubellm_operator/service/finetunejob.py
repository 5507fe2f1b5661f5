"""FineTuneJob reconcile: parse → build → apply → derive status, side by side with
service/llmdeployment.py.

The RayJob is created once (with the trainer's identity before it) and afterwards only its
``suspend`` is changed: a running training cluster is never re-applied, so an operator upgrade
or a new default cannot restart a run. A run the trainer refused for its inputs is stopped at
once (its RayJob deleted): KubeRay would retry it, and no retry can fix the inputs.

``ttlSecondsAfterFinished`` after a job ended, its RayJob (and with it the Ray cluster) and the
trainer's identity are deleted; the job, its status and the adapter stay.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from kubellm_operator import names
from kubellm_operator.api.base import InvalidSpecError
from kubellm_operator.api.finetunejob import FineTuneJobSpec, FineTuneJobStatus
from kubellm_operator.api.refs import ObjectRef
from kubellm_operator.builders.rayjob import build_rayjob
from kubellm_operator.builders.trainer_identity import build_trainer_identity
from kubellm_operator.config import OperatorConfig
from kubellm_operator.errors import KubeError
from kubellm_operator.service.ports import FineTuneJobCluster
from kubellm_operator.status.finetunejob import (
    HandOffTarget,
    JobStatusView,
    Observed,
    derive,
    phase_verdict,
)
from kubellm_operator.status.patch import merge_patch
from kubellm_operator.status.rayjob import RayJobView
from kubellm_operator.status.reasons import FINAL_PHASES, INPUT_FAULTS

TRAINER_FIELDS = ("adapterUri",)
"""Status fields the trainer writes (with progress, which the operator's model lacks)."""


@dataclass(frozen=True)
class Outcome:
    status: FineTuneJobStatus
    writes: tuple[str, ...] = ()
    """What this reconcile wrote (kinds), for the metrics."""
    error: KubeError | None = None
    """An API call failed: the caller writes what is known and retries."""
    recheck_s: float | None = None
    """Reconcile again this many seconds from now (a finished job's TTL falls due)."""


def status_patch(outcome: Outcome, before: Mapping[str, Any]) -> dict[str, Any]:
    """The operator's fields as a merge patch; the trainer's (progress, the adapter's
    location) are left alone, and a retried run's earlier error goes once it succeeded."""
    succeeded = outcome.status.phase == "Succeeded" and before.get("error")
    clear = ("error",) if succeeded else ()
    return merge_patch(outcome.status.to_wire(), clear=clear, skip=TRAINER_FIELDS)


def sync(ref: ObjectRef, cluster: FineTuneJobCluster, config: OperatorConfig, now: str) -> Outcome:
    """Bring the RayJob in line with the job (if needed) and derive the status."""
    name = names.rayjob_name(ref.name)
    observed = Observed(
        ref.generation,
        now,
        None,
        JobStatusView.parse(ref.status),
        rayjob_name=name,
        name=ref.name,
        namespace=ref.namespace,
    )
    try:
        spec = FineTuneJobSpec.parse(ref.spec)
    except InvalidSpecError as exc:
        return Outcome(derive(replace(observed, invalid=str(exc))))
    observed = replace(observed, spec=spec)
    recheck_s = None
    try:
        if observed.previous.phase not in FINAL_PHASES:
            observed, writes = _run(ref, spec, observed, cluster, config)
            if observed.missing_claims:
                recheck_s = config.claim_recheck_s
        else:
            recheck_s = _ttl_left(observed.previous, spec, now)
            writes = _clean_up(ref, cluster) if recheck_s is None else ()
        if spec.deploy_to and phase_verdict(observed).phase == "Succeeded":
            found = cluster.get_llmdeployment(ref.namespace, spec.deploy_to)
            target = HandOffTarget.parse(found) if found is not None else None
            observed = replace(observed, deployment=target)
    except KubeError as exc:
        return Outcome(derive(replace(observed, api_error=exc)), (), exc)
    return Outcome(derive(observed), writes, recheck_s=recheck_s)


def _ttl_left(status: JobStatusView, spec: FineTuneJobSpec, now: str) -> float | None:
    """Seconds until a finished job's children are due for deletion; None once they are."""
    ended = status.completion_time
    if not ended:
        return None
    elapsed = (datetime.fromisoformat(now) - datetime.fromisoformat(ended)).total_seconds()
    left = spec.ttl_seconds_after_finished - elapsed
    return left if left > 0 else None


def _clean_up(ref: ObjectRef, cluster: FineTuneJobCluster) -> tuple[str, ...]:
    """The finished job's RayJob and trainer identity; the identity goes first, so a RayJob
    that is gone means both are (a later reconcile then costs one GET)."""
    name = names.rayjob_name(ref.name)
    if cluster.get_rayjob(ref.namespace, name) is None:
        return ()
    cluster.delete_trainer_identity(ref.namespace, ref.name)
    cluster.delete_rayjob(ref.namespace, name)
    return ("identity", "rayjob")


def _run(
    ref: ObjectRef,
    spec: FineTuneJobSpec,
    observed: Observed,
    cluster: FineTuneJobCluster,
    config: OperatorConfig,
) -> tuple[Observed, tuple[str, ...]]:
    """The RayJob: created once, suspended or resumed, stopped when its inputs are refused."""
    name = names.rayjob_name(ref.name)
    writes: list[str] = []
    if (error := observed.previous.error) is not None and error.reason in INPUT_FAULTS:
        cluster.delete_rayjob(ref.namespace, name)  # stop KubeRay's retries
        return observed, ("rayjob",)
    current = cluster.get_rayjob(ref.namespace, name)
    if current is None:
        missing = {
            claim: path
            for claim, (path, *_) in spec.claims.items()
            if not cluster.claim_exists(ref.namespace, claim)
        }
        if missing:  # its pods could never start: create nothing yet
            return replace(observed, missing_claims=missing), ()
        for child in build_trainer_identity(ref.owner):
            cluster.apply(child)
            writes.append(child["kind"].lower())
        current = cluster.apply(build_rayjob(ref.owner, spec, config))
        writes.append("rayjob")
    elif bool((current.get("spec") or {}).get("suspend")) != spec.suspend:
        cluster.patch_rayjob(ref.namespace, name, {"spec": {"suspend": spec.suspend}})
        writes.append("rayjob")
        current = {**current, "spec": {**current.get("spec", {}), "suspend": spec.suspend}}
    observed = replace(observed, rayjob=RayJobView.parse(current))
    return observed, tuple(writes)
