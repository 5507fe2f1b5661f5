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
from typing import Any, Self

from kubellm_operator.api.common import Condition
from kubellm_operator.api.finetunejob import (
    FineTuneJobSpec,
    FineTuneJobStatus,
    JobPhase,
    TrainingError,
)
from kubellm_operator.api.llmdeployment import AdapterStatus
from kubellm_operator.errors import KubeError
from kubellm_operator.status.conditions import Verdict, cap, missing_claims, stamp
from kubellm_operator.status.rayjob import RayJobView
from kubellm_operator.status.reasons import (
    CLAIM_NOT_FOUND,
    DEPLOYED,
    FAILED,
    FINAL_PHASES,
    INPUT_FAULTS,
    INVALID_SPEC,
    RUNNING,
    SUCCEEDED,
)
from kubellm_operator.status.view import View


class JobStatusView(View):
    """The job's status as it is: the operator's last word (its phase among it) and what the
    trainer reported (progress, the adapter's location, the error of inputs at fault)."""

    phase: JobPhase | None = None
    message: str = ""
    conditions: tuple[Condition, ...] = ()
    error: TrainingError | None = None
    start_time: str | None = None
    completion_time: str | None = None
    ray_job_name: str | None = None
    attempts: int | None = None
    adapter_uri: str | None = None
    """Set by the trainer once the adapter is published whole."""
    progress: dict[str, Any] | None = None

    @classmethod
    def parse(cls, status: Mapping[str, Any]) -> Self:
        return cls.model_validate({k: v for k, v in status.items() if v is not None})

    @property
    def started(self) -> bool:
        """The trainer has written progress (training began)."""
        return bool(self.progress)


class HandOffTarget(View):
    """What a job handing its adapter off reads of that LLMDeployment: whether its status
    describes its current spec, and the adapters it reports."""

    generation: int | None = None
    observed_generation: int | None = None
    adapters: tuple[AdapterStatus, ...] = ()

    @classmethod
    def parse(cls, obj: Mapping[str, Any]) -> Self:
        status = obj.get("status") or {}
        return cls(
            generation=(obj.get("metadata") or {}).get("generation"),
            observed_generation=status.get("observedGeneration"),
            adapters=tuple(AdapterStatus.model_validate(a) for a in status.get("adapters") or ()),
        )

    @property
    def current(self) -> bool:
        return self.observed_generation == self.generation


@dataclass(frozen=True)
class Observed:
    """Everything a FineTuneJob's status is derived from (read by the caller)."""

    generation: int
    now: str
    spec: FineTuneJobSpec | None
    previous: JobStatusView
    rayjob: RayJobView | None = None
    rayjob_name: str | None = None
    invalid: str | None = None
    api_error: KubeError | None = None
    name: str = ""
    namespace: str = ""
    missing_claims: Mapping[str, str] = field(default_factory=dict)
    """PersistentVolumeClaims the spec names that do not exist (claim → field): the RayJob
    is not created until they do."""
    deployment: HandOffTarget | None = None
    """The LLMDeployment named in deployTo, read once the job has Succeeded."""


@dataclass(frozen=True)
class PhaseVerdict:
    """The job's phase, why, and the error it failed with."""

    phase: JobPhase
    reason: str
    message: str
    error: TrainingError | None = None


def phase_verdict(obs: Observed) -> PhaseVerdict:
    """The job's phase and why."""
    before = obs.previous.phase
    if before is not None and before in FINAL_PHASES:
        # Final: a later RayJob change (its TTL cleanup) changes nothing.
        written = next((c for c in obs.previous.conditions if c.type == before), None)
        return PhaseVerdict(
            before,
            written.reason if written and written.reason else "Finished",  # the reason stays
            obs.previous.message,
            obs.previous.error,
        )
    if obs.invalid is not None:
        error = TrainingError(reason=INVALID_SPEC, message=obs.invalid, field="spec")
        return PhaseVerdict("Failed", INVALID_SPEC, obs.invalid, error)
    reported = obs.previous
    if reported.error is not None and reported.error.reason in INPUT_FAULTS:
        return PhaseVerdict("Failed", reported.error.reason, reported.error.message, reported.error)
    if obs.rayjob is None:
        return _not_created(obs)
    return _from_rayjob(obs.rayjob, obs, reported)


def _not_created(obs: Observed) -> PhaseVerdict:
    """No RayJob yet: being created, refused by the API, or waiting for a claim."""
    if obs.api_error is not None:
        return PhaseVerdict("Pending", obs.api_error.reason, obs.api_error.message)
    if obs.missing_claims:
        message = missing_claims(obs.missing_claims, obs.namespace)
        return PhaseVerdict("Pending", CLAIM_NOT_FOUND, message)
    return PhaseVerdict("Pending", "Creating", "creating the RayJob")


def _from_rayjob(job: RayJobView, obs: Observed, reported: JobStatusView) -> PhaseVerdict:
    suspended = obs.spec is not None and obs.spec.suspend
    if suspended or job.deployment in ("Suspending", "Suspended"):
        done = job.deployment == "Suspended"
        message = "suspended: workers freed" if done else "suspending: stopping the workers"
        return PhaseVerdict(
            "Suspended", "Suspended", f"{message}; resuming continues from the last checkpoint"
        )
    if job.deployment == "Failed":
        return _failed(job, obs, reported)
    if job.deployment == "Complete":
        return _ended(job, reported)
    return _in_progress(job, obs, reported)  # KubeRay decides what an ended Ray job means


def _in_progress(job: RayJobView, obs: Observed, reported: JobStatusView) -> PhaseVerdict:
    if job.deployment == "Retrying":
        last = reported.error.message if reported.error else job.message
        limit = obs.spec.backoff_limit if obs.spec else 0
        return PhaseVerdict(
            "Running", "Retrying", f"retry {job.failed} of {limit}, after: {last or 'a failure'}"
        )
    if job.job in ("SUCCEEDED", "FAILED", "STOPPED"):
        return PhaseVerdict(
            "Running", "Finishing", f"the run ended {job.job}; KubeRay is finishing it"
        )
    if job.job == "RUNNING":
        if reported.started:
            return PhaseVerdict("Running", "Training", "training")
        return PhaseVerdict("Running", "Starting", "the trainer is loading the model and the data")
    if job.deployment == "Running":
        return PhaseVerdict("Pending", "Submitted", "the run is submitted; waiting for it to start")
    return PhaseVerdict(
        "Pending", "WaitingForWorkers", "waiting for the Ray cluster and its workers"
    )


def _ended(job: RayJobView, reported: JobStatusView) -> PhaseVerdict:
    if job.job == "SUCCEEDED":
        if reported.adapter_uri:
            return PhaseVerdict(
                "Succeeded", "Succeeded", f"the adapter is at {reported.adapter_uri}"
            )
        message = "the run ended without publishing an adapter"
        return PhaseVerdict(
            "Failed", "NoAdapter", message, TrainingError(reason="NoAdapter", message=message)
        )
    if reported.error is not None:
        return PhaseVerdict("Failed", reported.error.reason, reported.error.message, reported.error)
    message = job.message or f"the run ended {job.job or 'without a result'}"
    return PhaseVerdict(
        "Failed", "TrainingFailed", message, TrainingError(reason="TrainingFailed", message=message)
    )


def _failed(job: RayJobView, obs: Observed, reported: JobStatusView) -> PhaseVerdict:
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
    return PhaseVerdict(
        "Failed", reason, message, TrainingError(reason=reason, message=cap(message))
    )


def _condition(obs: Observed, type_: str, on: bool, v: PhaseVerdict) -> Condition:
    verdict = Verdict("True" if on else "False", v.reason, v.message)
    return stamp(obs.previous.conditions, type_, verdict, obs.generation, obs.now)


def deployed(obs: Observed, v: PhaseVerdict) -> PhaseVerdict:
    """Deployed: True only once the deployment reports the adapter served (Ray Serve applied
    the adapter list on every replica of the serving cluster, for its current spec)."""
    target = obs.spec.deploy_to if obs.spec else None
    adapter = (obs.spec.output.adapter_name if obs.spec else None) or obs.name
    if v.phase != "Succeeded":
        reason = "TrainingFailed" if v.phase == "Failed" else "AwaitingTraining"
        return PhaseVerdict(
            v.phase, reason, f"goes to LLMDeployment {target} once training succeeds"
        )
    if obs.deployment is None:
        return PhaseVerdict(v.phase, "DeploymentNotFound", f"LLMDeployment {target} not found")
    entry = next((a for a in obs.deployment.adapters if a.name == adapter), None)
    uri = obs.previous.adapter_uri
    if entry is None or not obs.deployment.current:
        return PhaseVerdict(
            v.phase, "HandingOff", f"LLMDeployment {target} has not taken {adapter} yet"
        )
    if entry.state == "Loaded" and entry.uri == uri:
        return PhaseVerdict(
            v.phase, "Served", f"served as {adapter} by LLMDeployment {target} on every replica"
        )
    if entry.state == "Failed":
        return PhaseVerdict(v.phase, "AdapterRefused", entry.message or "refused")
    return PhaseVerdict(v.phase, "Loading", entry.message or "loading on the replicas")


def derive(obs: Observed) -> FineTuneJobStatus:
    """The operator's part of the status (the trainer's fields are left as they are)."""
    v = phase_verdict(obs)
    job = obs.rayjob
    final = v.phase in FINAL_PHASES
    previous_start = obs.previous.start_time
    previous_end = obs.previous.completion_time
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
        adapter_uri=obs.previous.adapter_uri if v.phase == "Succeeded" else None,
        # Named once it exists (and kept after its TTL deletes it), not while none was made.
        ray_job_name=obs.rayjob_name if job or obs.previous.ray_job_name else None,
        message=cap(v.message),
        error=v.error if v.phase == "Failed" else None,
        attempts=attempts if attempts is not None else obs.previous.attempts,
    )
