"""FineTuneJob status from its RayJob and the trainer's reports: every phase, as a table.

Succeeded only with a published adapter; Failed with a reason and message a program and a
human can use; Suspended while spec.suspend holds; Succeeded and Failed final."""

from __future__ import annotations

from typing import Any

import pytest

from kubellm_operator.api.finetunejob import FineTuneJobSpec
from kubellm_operator.errors import KubeError
from kubellm_operator.status.finetunejob import HandOffTarget, JobStatusView, Observed, derive
from kubellm_operator.status.rayjob import RayJobView

NOW = "2026-12-02T10:00:00Z"
SPEC: dict[str, Any] = {
    "baseModel": {"uri": "pvc://models/tiny"},
    "dataset": {"uri": "pvc://data/train.jsonl"},
    "output": {"uri": "pvc://out/adapters"},
    "backoffLimit": 2,
    "activeDeadlineSeconds": 600,
}


def rayjob(deployment: str, job: str = "", **status: Any) -> RayJobView:
    return RayJobView.parse(
        {
            "metadata": {"name": "sql"},
            "status": {"jobDeploymentStatus": deployment, "jobStatus": job, **status},
        }
    )


def observe(
    job: RayJobView | None, previous: dict[str, Any] | None = None, **spec: Any
) -> Observed:
    return Observed(
        generation=3,
        now=NOW,
        spec=FineTuneJobSpec.parse({**SPEC, **spec}),
        previous=JobStatusView.parse(previous or {}),
        rayjob=job,
        rayjob_name="sql",
    )


def conditions(status: Any) -> dict[str, str]:
    return {c.type: c.status for c in status.conditions}


PROGRESS = {"progress": {"step": 3, "totalSteps": 10}}
PUBLISHED = {**PROGRESS, "adapterUri": "pvc://out/adapters/sql-1234abcd"}


PHASES: list[tuple[RayJobView | None, dict[str, Any], dict[str, Any], str, str]] = [
    (None, {}, {}, "Pending", "Creating"),
    (rayjob(""), {}, {}, "Pending", "WaitingForWorkers"),
    (rayjob("Initializing"), {}, {}, "Pending", "WaitingForWorkers"),
    (rayjob("Running", "PENDING"), {}, {}, "Pending", "Submitted"),
    (rayjob("Running", "RUNNING"), {}, {}, "Running", "Starting"),
    (rayjob("Running", "RUNNING"), PROGRESS, {}, "Running", "Training"),
    (rayjob("Running", "SUCCEEDED"), PUBLISHED, {}, "Running", "Finishing"),
    (rayjob("Retrying", "FAILED", failed=1), PROGRESS, {}, "Running", "Retrying"),
    (rayjob("Suspending", "STOPPED"), PROGRESS, {"suspend": True}, "Suspended", "Suspended"),
    (rayjob("Suspended"), PROGRESS, {"suspend": True}, "Suspended", "Suspended"),
    (rayjob("Complete", "SUCCEEDED"), PUBLISHED, {}, "Succeeded", "Succeeded"),
    (rayjob("Complete", "SUCCEEDED"), PROGRESS, {}, "Failed", "NoAdapter"),
    (
        rayjob("Failed", "FAILED", reason="DeadlineExceeded"),
        PROGRESS,
        {},
        "Failed",
        "DeadlineExceeded",
    ),
    (
        rayjob("Failed", reason="PreRunningDeadlineExceeded"),
        {},
        {},
        "Failed",
        "PreRunningDeadlineExceeded",
    ),
    (
        rayjob("Failed", "FAILED", reason="AppFailed", failed=3),
        PROGRESS,
        {},
        "Failed",
        "BackoffLimitExceeded",
    ),
    (rayjob("Failed", reason="SubmissionFailed"), {}, {}, "Failed", "SubmissionFailed"),
    (rayjob("Failed", reason="ValidationFailed"), {}, {}, "Failed", "ChildRejected"),
]
"""(RayJob, trainer reports, spec, phase, reason): every phase a job can show."""


@pytest.mark.parametrize(("job", "previous", "spec", "phase", "reason"), PHASES)
def test_every_phase_from_the_rayjob(
    job: RayJobView | None, previous: dict[str, Any], spec: dict[str, Any], phase: str, reason: str
) -> None:
    status = derive(observe(job, previous, **spec))
    assert (status.phase, status.conditions[0].reason) == (phase, reason)
    assert conditions(status) == {
        "Running": "True" if phase == "Running" else "False",
        "Succeeded": "True" if phase == "Succeeded" else "False",
        "Failed": "True" if phase == "Failed" else "False",
    }
    assert all(c.observed_generation == 3 for c in status.conditions)
    assert (status.error is not None) == (phase == "Failed")
    if status.error is not None:
        assert status.error.reason == reason
    assert (status.completion_time is not None) == (phase in ("Succeeded", "Failed"))


def test_succeeded_names_the_adapter_and_never_comes_without_one() -> None:
    status = derive(observe(rayjob("Complete", "SUCCEEDED"), PUBLISHED))
    assert status.adapter_uri == PUBLISHED["adapterUri"]
    assert PUBLISHED["adapterUri"] in status.message
    missing = derive(observe(rayjob("Complete", "SUCCEEDED"), PROGRESS))
    assert missing.adapter_uri is None
    assert missing.error is not None
    assert "without publishing an adapter" in missing.error.message


def test_the_trainers_refusal_of_its_inputs_is_final_with_line_and_field() -> None:
    error = {
        "reason": "InvalidDataset",
        "message": "pvc://data/train.jsonl: line 7: missing field 'text'",
        "field": "spec.dataset",
    }
    # KubeRay would still call it Retrying: the trainer's reason wins, no retry can fix it.
    status = derive(observe(rayjob("Retrying", "FAILED", failed=1), {"error": error}))
    assert status.phase == "Failed"
    assert status.error is not None
    assert status.error.model_dump() == error
    assert status.conditions[2].message.endswith("line 7: missing field 'text'")


def test_a_retry_says_which_and_after_what() -> None:
    error = {"reason": "TrainingFailed", "message": "CUDA out of memory"}
    status = derive(observe(rayjob("Retrying", failed=1), {"error": error}))
    assert status.message == "retry 1 of 2, after: CUDA out of memory"
    assert status.attempts == 2


def test_backoff_exhausted_and_deadline_say_the_limit() -> None:
    error = {"reason": "TrainingFailed", "message": "NCCL timeout"}
    exhausted = derive(observe(rayjob("Failed", reason="AppFailed", failed=3), {"error": error}))
    assert exhausted.message == "failed 3 times (backoffLimit 2); last: NCCL timeout"
    late = derive(observe(rayjob("Failed", reason="DeadlineExceeded"), PROGRESS))
    assert late.message == "ran longer than activeDeadlineSeconds (600 s)"


def test_final_phases_stay_whatever_the_rayjob_does_later() -> None:
    done = derive(observe(rayjob("Complete", "SUCCEEDED"), PUBLISHED)).to_wire()
    later = derive(observe(None, {**PUBLISHED, **done}))  # its TTL removed the RayJob
    assert later.phase == "Succeeded"
    assert later.completion_time == done["completionTime"]
    kept = {c.type: c.last_transition_time for c in later.conditions}
    assert kept == {c["type"]: c["lastTransitionTime"] for c in done["conditions"]}


def test_an_invalid_spec_fails_naming_the_field() -> None:
    observed = Observed(
        generation=1,
        now=NOW,
        spec=None,
        previous=JobStatusView.parse({}),
        invalid="spec.dataset.format: Input should be 'text', 'instruction' or 'chat'",
    )
    status = derive(observed)
    assert (status.phase, status.conditions[2].reason) == ("Failed", "InvalidSpec")
    assert status.error is not None
    assert "spec.dataset.format" in status.error.message


def test_an_api_failure_before_the_rayjob_exists_is_pending_with_the_reason() -> None:
    observed = observe(None)
    status = derive(
        Observed(**{**observed.__dict__, "api_error": KubeError(403, "forbidden: rayjobs")})
    )
    assert (status.phase, status.conditions[0].reason) == ("Pending", "Forbidden")
    assert "forbidden" in status.message


def test_times_come_from_the_rayjob() -> None:
    job = rayjob("Running", "RUNNING", startTime="2026-12-02T09:00:00Z")
    status = derive(observe(job, PROGRESS))
    assert status.start_time == "2026-12-02T09:00:00Z"
    assert status.completion_time is None
    assert status.ray_job_name == "sql"


def deployment(adapters: list[dict[str, Any]], current: bool = True) -> dict[str, Any]:
    return {
        "metadata": {"name": "llama", "generation": 4},
        "status": {"observedGeneration": 4 if current else 3, "adapters": adapters},
    }


def deployed_condition(job: RayJobView | None, previous: dict[str, Any], llmd: Any) -> Any:
    observed = observe(job, previous, deployTo="llama")
    target = HandOffTarget.parse(llmd) if llmd is not None else None
    observed = Observed(**{**observed.__dict__, "name": "sql", "deployment": target})
    status = derive(observed)
    return next(c for c in status.conditions if c.type == "Deployed")


URI = PUBLISHED["adapterUri"]


@pytest.mark.parametrize(
    ("job", "previous", "llmd", "status", "reason"),
    [
        (rayjob("Running", "RUNNING"), PROGRESS, None, "False", "AwaitingTraining"),
        (rayjob("Failed", reason="DeadlineExceeded"), PROGRESS, None, "False", "TrainingFailed"),
        (rayjob("Complete", "SUCCEEDED"), PUBLISHED, None, "False", "DeploymentNotFound"),
        (rayjob("Complete", "SUCCEEDED"), PUBLISHED, deployment([]), "False", "HandingOff"),
        (
            rayjob("Complete", "SUCCEEDED"),
            PUBLISHED,
            deployment([{"name": "sql", "state": "Pending", "uri": URI}]),
            "False",
            "Loading",
        ),
        (
            rayjob("Complete", "SUCCEEDED"),
            PUBLISHED,
            deployment([{"name": "sql", "state": "Loaded", "uri": URI}], current=False),
            "False",
            "HandingOff",
        ),
        (
            rayjob("Complete", "SUCCEEDED"),
            PUBLISHED,
            deployment([{"name": "sql", "state": "Loaded", "uri": "pvc://an/older/one"}]),
            "False",
            "Loading",
        ),
        (
            rayjob("Complete", "SUCCEEDED"),
            PUBLISHED,
            deployment([{"name": "sql", "state": "Failed", "message": "trained on hf://x/y"}]),
            "False",
            "AdapterRefused",
        ),
        (
            rayjob("Complete", "SUCCEEDED"),
            PUBLISHED,
            deployment([{"name": "sql", "state": "Loaded", "uri": URI}]),
            "True",
            "Served",
        ),
    ],
)
def test_deployed_is_true_only_once_the_deployment_serves_this_adapter(
    job: RayJobView | None, previous: dict[str, Any], llmd: Any, status: str, reason: str
) -> None:
    condition = deployed_condition(job, previous, llmd)
    assert (condition.status, condition.reason) == (status, reason)


def test_no_deployed_condition_without_deploy_to() -> None:
    status = derive(observe(rayjob("Complete", "SUCCEEDED"), PUBLISHED))
    assert "Deployed" not in {c.type for c in status.conditions}
