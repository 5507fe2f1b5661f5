"""Derives FineTuneJob status from its RayJob and what the trainer reported: pure, table-tested.

The operator owns phase, conditions, times, attempts and message; the trainer writes progress,
the adapter's location (only once it is published whole) and the error of inputs at fault.

* ``Succeeded`` only when the run ended well *and* the adapter is published: never without one.
* ``Failed`` with ``error`` {reason, message, field}: the trainer's reason when it refused the
  inputs (InvalidDataset, ModelNotLoadable, OutputNotWritable: no retry can fix those), else
  KubeRay's (DeadlineExceeded, PreRunningDeadlineExceeded, BackoffLimitExceeded, ...).
* ``Suspended`` while spec.suspend holds (the workers are freed; resuming continues from the
  last checkpoint). Succeeded and Failed are final.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubellm_operator.api.claims import CLAIM_NOT_FOUND, missing_message
from kubellm_operator.api.common import Condition
from kubellm_operator.api.finetunejob import (
    FineTuneJobSpec,
    FineTuneJobStatus,
    JobPhase,
    TrainingError,
)
from kubellm_operator.errors import KubeError
from kubellm_operator.status.rayjob import RayJobView

RUNNING, SUCCEEDED, FAILED, DEPLOYED = "Running", "Succeeded", "Failed", "Deployed"
# The trainer's reasons for inputs at fault: final at once, never retried.
INPUT_FAULTS = frozenset({"InvalidDataset", "ModelNotLoadable", "OutputNotWritable"})
FINAL: frozenset[str] = frozenset({SUCCEEDED, FAILED})
MAX_MESSAGE = 1024


@dataclass(frozen=True)
class Reported:
    """What the trainer wrote on the job's status."""

    adapter_uri: str | None = None
    error: TrainingError | None = None
    started: bool = False
    """It has written progress (training began)."""

    @classmethod
    def parse(cls, status: Mapping[str, Any]) -> Reported:
        error = status.get("error")
        return cls(
            adapter_uri=status.get("adapterUri"),
            error=TrainingError.model_validate(error) if isinstance(error, dict) else None,
            started=bool(status.get("progress")),
        )


@dataclass(frozen=True)
class JobObserved:
    """Everything a FineTuneJob's status is derived from (read by the caller)."""

    generation: int
    now: str
    spec: FineTuneJobSpec | None
    previous: Mapping[str, Any]
    """The status as it is (the trainer's fields and the last phase among it)."""
    rayjob: RayJobView | None = None
    rayjob_name: str | None = None
    invalid: str | None = None
    api_error: KubeError | None = None
    name: str = ""
    namespace: str = ""
    missing_claims: Mapping[str, str] = field(default_factory=dict)
    """PersistentVolumeClaims the spec names that do not exist (claim → field): the RayJob
    is not created until they do."""
    deployment: Mapping[str, Any] | None = None
    """The LLMDeployment named in deployTo, read once the job has Succeeded."""

    @property
    def reported(self) -> Reported:
        return Reported.parse(self.previous)


@dataclass(frozen=True)
class Verdict:
    phase: JobPhase
    reason: str
    message: str
    error: TrainingError | None = None


def verdict(obs: JobObserved) -> Verdict:
    """The job's phase and why."""
    before = obs.previous.get("phase")
    if before in FINAL:  # final: a later RayJob change (its TTL cleanup) changes nothing
        error = obs.previous.get("error")
        written: Mapping[str, Any] = next(
            (c for c in obs.previous.get("conditions") or [] if c.get("type") == before), {}
        )
        return Verdict(
            before,
            str(written.get("reason") or "Finished"),  # the reason it ended with stays
            str(obs.previous.get("message") or ""),
            TrainingError.model_validate(error) if isinstance(error, dict) else None,
        )
    if obs.invalid is not None:
        error = TrainingError(reason="InvalidSpec", message=obs.invalid, field="spec")
        return Verdict("Failed", "InvalidSpec", obs.invalid, error)
    reported = obs.reported
    if reported.error is not None and reported.error.reason in INPUT_FAULTS:
        return Verdict("Failed", reported.error.reason, reported.error.message, reported.error)
    if obs.rayjob is None:
        return _not_created(obs)
    return _from_rayjob(obs.rayjob, obs, reported)


def _not_created(obs: JobObserved) -> Verdict:
    """No RayJob yet: being created, refused by the API, or waiting for a claim."""
    if obs.api_error is not None:
        return Verdict("Pending", obs.api_error.reason, obs.api_error.message)
    if obs.missing_claims:
        message = missing_message(obs.missing_claims, obs.namespace)
        return Verdict("Pending", CLAIM_NOT_FOUND, message)
    return Verdict("Pending", "Creating", "creating the RayJob")


def _from_rayjob(job: RayJobView, obs: JobObserved, reported: Reported) -> Verdict:
    suspended = obs.spec is not None and obs.spec.suspend
    if suspended or job.deployment in ("Suspending", "Suspended"):
        done = job.deployment == "Suspended"
        message = "suspended: workers freed" if done else "suspending: stopping the workers"
        return Verdict(
            "Suspended", "Suspended", f"{message}; resuming continues from the last checkpoint"
        )
    if job.deployment == "Failed":
        return _failed(job, obs, reported)
    if job.deployment == "Complete":
        return _ended(job, reported)
    return _in_progress(job, obs, reported)  # KubeRay decides what an ended Ray job means


def _in_progress(job: RayJobView, obs: JobObserved, reported: Reported) -> Verdict:
    if job.deployment == "Retrying":
        last = reported.error.message if reported.error else job.message
        limit = obs.spec.backoff_limit if obs.spec else 0
        return Verdict(
            "Running", "Retrying", f"retry {job.failed} of {limit}, after: {last or 'a failure'}"
        )
    if job.job in ("SUCCEEDED", "FAILED", "STOPPED"):
        return Verdict("Running", "Finishing", f"the run ended {job.job}; KubeRay is finishing it")
    if job.job == "RUNNING":
        if reported.started:
            return Verdict("Running", "Training", "training")
        return Verdict("Running", "Starting", "the trainer is loading the model and the data")
    if job.deployment == "Running":
        return Verdict("Pending", "Submitted", "the run is submitted; waiting for it to start")
    return Verdict("Pending", "WaitingForWorkers", "waiting for the Ray cluster and its workers")


def _ended(job: RayJobView, reported: Reported) -> Verdict:
    if job.job == "SUCCEEDED":
        if reported.adapter_uri:
            return Verdict("Succeeded", "Succeeded", f"the adapter is at {reported.adapter_uri}")
        message = "the run ended without publishing an adapter"
        return Verdict(
            "Failed", "NoAdapter", message, TrainingError(reason="NoAdapter", message=message)
        )
    if reported.error is not None:
        return Verdict("Failed", reported.error.reason, reported.error.message, reported.error)
    message = job.message or f"the run ended {job.job or 'without a result'}"
    return Verdict(
        "Failed", "TrainingFailed", message, TrainingError(reason="TrainingFailed", message=message)
    )


def _failed(job: RayJobView, obs: JobObserved, reported: Reported) -> Verdict:
    reason = {
        "DeadlineExceeded": "DeadlineExceeded",
        "PreRunningDeadlineExceeded": "PreRunningDeadlineExceeded",
        "SubmissionFailed": "SubmissionFailed",
        "ValidationFailed": "ChildRejected",
    }.get(job.reason)
    limit = obs.spec.backoff_limit if obs.spec else 0
    if reason is None:
        reason = "BackoffLimitExceeded" if job.failed > limit else "TrainingFailed"
    last = reported.error.message if reported.error else job.message
    if reason == "BackoffLimitExceeded":
        message = f"failed {job.failed} times (backoffLimit {limit}); last: {last or job.reason}"
    elif reason == "DeadlineExceeded" and obs.spec and obs.spec.active_deadline_seconds:
        message = f"ran longer than activeDeadlineSeconds ({obs.spec.active_deadline_seconds} s)"
    else:
        message = last or job.reason or "the RayJob failed"
    return Verdict("Failed", reason, message, TrainingError(reason=reason, message=_cap(message)))


def _cap(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


def _condition(obs: JobObserved, type_: str, on: bool, v: Verdict) -> Condition:
    status = "True" if on else "False"
    before = next((c for c in obs.previous.get("conditions") or [] if c.get("type") == type_), None)
    kept = (
        before is not None and before.get("status") == status and before.get("lastTransitionTime")
    )
    return Condition(
        type=type_,
        status=status,
        reason=v.reason,
        message=_cap(v.message),
        observed_generation=obs.generation,
        last_transition_time=before["lastTransitionTime"] if kept and before else obs.now,
    )


def deployed(obs: JobObserved, v: Verdict) -> Verdict:
    """Deployed: True only once the deployment reports the adapter served (Ray Serve applied
    the adapter list on every replica of the serving cluster, for its current spec)."""
    target = obs.spec.deploy_to if obs.spec else None
    adapter = (obs.spec.output.adapter_name if obs.spec else None) or obs.name
    if v.phase != "Succeeded":
        reason = "TrainingFailed" if v.phase == "Failed" else "AwaitingTraining"
        return Verdict(v.phase, reason, f"goes to LLMDeployment {target} once training succeeds")
    if obs.deployment is None:
        return Verdict(v.phase, "DeploymentNotFound", f"LLMDeployment {target} not found")
    status = obs.deployment.get("status") or {}
    current = status.get("observedGeneration") == (obs.deployment.get("metadata") or {}).get(
        "generation"
    )
    entry = next((a for a in status.get("adapters") or [] if a.get("name") == adapter), None)
    uri = obs.reported.adapter_uri
    if entry is None or not current:
        return Verdict(v.phase, "HandingOff", f"LLMDeployment {target} has not taken {adapter} yet")
    if entry.get("state") == "Loaded" and entry.get("uri") == uri:
        return Verdict(
            v.phase, "Served", f"served as {adapter} by LLMDeployment {target} on every replica"
        )
    if entry.get("state") == "Failed":
        return Verdict(v.phase, "AdapterRefused", str(entry.get("message") or "refused"))
    return Verdict(v.phase, "Loading", str(entry.get("message") or "loading on the replicas"))


def derive_job(obs: JobObserved) -> FineTuneJobStatus:
    """The operator's part of the status (the trainer's fields are left as they are)."""
    v = verdict(obs)
    job = obs.rayjob
    final = v.phase in FINAL
    previous_start = obs.previous.get("startTime")
    previous_end = obs.previous.get("completionTime")
    ended = (job.end_time if job else None) or obs.now
    attempts = None
    if job is not None:
        attempts = job.failed + job.succeeded + (0 if final or v.phase == "Pending" else 1)
    return FineTuneJobStatus(
        phase=v.phase,
        conditions=[
            _condition(obs, RUNNING, v.phase == "Running", v),
            _condition(obs, SUCCEEDED, v.phase == "Succeeded", v),
            _condition(obs, FAILED, v.phase == "Failed", v),
            *(
                [_condition(obs, DEPLOYED, (d := deployed(obs, v)).reason == "Served", d)]
                if obs.spec and obs.spec.deploy_to
                else []
            ),
        ],
        observed_generation=obs.generation,
        start_time=previous_start or (job.start_time if job else None),
        completion_time=previous_end or (ended if final else None),
        adapter_uri=obs.reported.adapter_uri if v.phase == "Succeeded" else None,
        # Named once it exists (and kept after its TTL deletes it), not while none was made.
        ray_job_name=obs.rayjob_name if job or obs.previous.get("rayJobName") else None,
        message=_cap(v.message),
        error=v.error if v.phase == "Failed" else None,
        attempts=attempts if attempts is not None else obs.previous.get("attempts"),
    )
