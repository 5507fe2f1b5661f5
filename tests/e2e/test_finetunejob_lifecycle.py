"""A FineTuneJob's lifecycle for real (operator, KubeRay, the trainer on the real Ray head):
suspend frees the workers and resume continues from the last committed checkpoint; a run past its
activeDeadlineSeconds ends Failed with DeadlineExceeded; the TTL removes the finished job's
children and keeps the job; failures past backoffLimit end Failed, not in a retry loop.

The Ray job runs on the real head in place of the RayCluster's pods; the bridge stops it once
KubeRay deletes that RayCluster, as the pods' deletion would (``kubellm_dev.pod_lifetime``)."""

from __future__ import annotations

import json
import os
import signal
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from kubellm_dev import tiny_model
from kubellm_dev.waiting import wait_for

from .conftest import E2ECluster
from .test_finetunejob_real import (
    GROUP,
    PLURAL,
    TRAINED,
    VERSION,
    children,
    create,
    dataset,
    finetunejob,
    get_job,
    status,
    wait_phase,
)

pytestmark = pytest.mark.realray
DASHBOARD = "http://127.0.0.1:8265"  # the real Ray head the bridge forwards to
STEPS = 3000  # about two minutes of training here: a checkpoint every 300 steps
EVERY = STEPS // 10


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model.build(tmp_path_factory.mktemp("models") / "tiny")


def long_run(name: str, model: Path, tmp_path: Path, **spec: Any) -> dict[str, Any]:
    job = finetunejob(name, model, dataset(tmp_path), tmp_path / "out", **spec)
    job["spec"]["hyperparameters"]["maxSteps"] = STEPS
    job["spec"]["dataset"]["validationSplit"] = 0  # no evaluations: only training steps
    return job


def committed_step(out: Path) -> int:
    """The step of the latest checkpoint Ray Train has committed to the run's storage (its
    snapshot lists it): what a restarted run is handed back. 0 before the first."""
    found = list(out.glob(".checkpoints/*/run/checkpoint_manager_snapshot.json"))
    if not found:
        return 0
    latest = json.loads(found[0].read_text()).get("latest_checkpoint_result") or {}
    return int((latest.get("metrics") or {}).get("step", 0))


def ray_jobs_of(cluster: E2ECluster, namespace: str, name: str) -> list[dict[str, Any]]:
    """The real head's jobs for this FineTuneJob (its run name carries the job's uid)."""
    uid = get_job(cluster, namespace, name)["metadata"]["uid"][:8]
    with urllib.request.urlopen(f"{DASHBOARD}/api/jobs/", timeout=10) as reply:
        jobs: list[dict[str, Any]] = json.loads(reply.read())
    return [j for j in jobs if f"{name}-{uid}" in (j.get("entrypoint") or "")]


def suspend(cluster: E2ECluster, namespace: str, name: str, value: bool) -> None:
    cluster.custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name, {"spec": {"suspend": value}}
    )


def test_suspend_frees_the_workers_and_resume_continues_from_the_last_checkpoint(
    cluster: E2ECluster, real_namespace: str, tiny: Path, tmp_path: Path
) -> None:
    ns = real_namespace
    create(cluster, ns, long_run("pause", tiny, tmp_path))
    committed = wait_for(
        lambda: committed_step(tmp_path / "out"),
        lambda step: step > 0,
        timeout=TRAINED,
        what="the first checkpoint to be committed to the run's storage",
        interval=0.5,
    )
    running = status(get_job(cluster, ns, "pause"))
    assert running["phase"] == "Running", running
    suspend(cluster, ns, "pause", True)
    suspended = wait_phase(cluster, ns, "pause", "Suspended")
    wait_for(
        lambda: children(cluster, ns),
        lambda found: found["rayclusters"] == 0 and found["pods"] == 0,
        timeout=120,
        what="the suspended job's Ray cluster and pods to be deleted (the workers freed)",
    )
    wait_for(
        lambda: ray_jobs_of(cluster, ns, "pause"),
        lambda jobs: bool(jobs) and all(j["status"] == "STOPPED" for j in jobs),
        timeout=60,
        what="the suspended run to be stopped on the Ray head",
    )
    paused = wait_for(  # KubeRay reports Suspended once the cluster is gone
        lambda: status(get_job(cluster, ns, "pause")),
        lambda s: s.get("phase") == "Suspended" and "workers freed" in s.get("message", ""),
        timeout=60,
        what="the job to say its workers are freed",
    )
    assert paused["progress"]["step"] < STEPS, paused  # the suspension landed mid-run
    running_condition = next(c for c in suspended["conditions"] if c["type"] == "Running")
    assert running_condition["status"] == "False"

    suspend(cluster, ns, "pause", False)
    done = wait_phase(cluster, ns, "pause", "Succeeded", "Failed")
    assert done["phase"] == "Succeeded", done
    progress = done["progress"]
    assert progress["step"] == progress["totalSteps"] == STEPS
    # It continued from a checkpoint saved before the suspension, not from step 0.
    assert committed <= progress["resumedFromStep"] < STEPS, (progress, committed)
    assert progress["resumedFromStep"] % EVERY == 0
    adapter = Path(done["adapterUri"].removeprefix("file://"))
    assert json.loads((adapter / "kubellm-adapter.json").read_text())["steps"] == STEPS
    assert len(ray_jobs_of(cluster, ns, "pause")) == 2  # the first attempt and the resumed one
    # What `kubectl describe ftj` shows: every phase it went through (kubectl orders Events by
    # their timestamps, whole seconds, so the order within one second is not asserted).
    phases = {"Pending", "Running", "Suspended", "Succeeded"}
    wait_for(
        lambda: cluster.described_events(ns, "ftj", "pause"),
        lambda reasons: phases <= set(reasons),
        timeout=30,
        what=f"`kubectl describe ftj pause` to show its Events {sorted(phases)}",
    )


def test_a_run_past_its_deadline_fails_and_the_ttl_removes_its_children(
    cluster: E2ECluster, real_namespace: str, tiny: Path, tmp_path: Path
) -> None:
    ns = real_namespace
    late = long_run("late", tiny, tmp_path, activeDeadlineSeconds=20, ttlSecondsAfterFinished=0)
    create(cluster, ns, late)
    failed = wait_phase(cluster, ns, "late", "Failed", "Succeeded")
    assert failed["phase"] == "Failed", failed
    assert failed["error"]["reason"] == "DeadlineExceeded"
    assert "activeDeadlineSeconds (20 s)" in failed["error"]["message"]
    assert "adapterUri" not in failed
    wait_for(
        lambda: children(cluster, ns),
        lambda found: not any(found.values()),
        timeout=120,
        what="the RayJob, Ray cluster, pods and trainer identity to go with the TTL",
    )
    wait_for(
        lambda: ray_jobs_of(cluster, ns, "late"),
        lambda jobs: all(j["status"] in ("STOPPED", "FAILED") for j in jobs),
        timeout=60,
        what="the run to be stopped on the Ray head",
    )
    kept = status(get_job(cluster, ns, "late"))  # the job and its verdict stay
    assert (kept["phase"], kept["error"]["reason"]) == ("Failed", "DeadlineExceeded")
    reasons = {c["type"]: c["reason"] for c in kept["conditions"]}
    assert reasons["Failed"] == "DeadlineExceeded"
    wait_for(
        lambda: cluster.described_events(ns, "ftj", "late"),
        lambda reasons: {"Running", "Failed"} <= set(reasons),
        timeout=30,
        what="`kubectl describe ftj late` to show its Running and Failed Events",
    )


def running_driver(cluster: E2ECluster, namespace: str, name: str, done: set[str]) -> Any:
    """(submission id, driver pid) of this job's Ray job that runs now, not one in ``done``."""
    for job in ray_jobs_of(cluster, namespace, name):
        pid = (job.get("driver_info") or {}).get("pid")
        if job["status"] == "RUNNING" and pid and job["submission_id"] not in done:
            return job["submission_id"], int(pid)
    return None


def test_retries_beyond_backoff_limit_end_failed_with_the_last_error_not_a_loop(
    cluster: E2ECluster, real_namespace: str, tiny: Path, tmp_path: Path
) -> None:
    """A failure that is not the inputs' (the driver killed, as by a lost node) is retried
    backoffLimit times; the next one ends the job Failed, naming it, and nothing runs again."""
    ns = real_namespace
    create(cluster, ns, long_run("flaky", tiny, tmp_path, backoffLimit=1))
    killed: set[str] = set()
    for attempt in (1, 2):
        submission, pid = wait_for(
            lambda: running_driver(cluster, ns, "flaky", killed),
            lambda found: found is not None,
            timeout=TRAINED,
            what=f"attempt {attempt}'s driver to run on the Ray head",
            interval=0.5,
        )
        os.kill(pid, signal.SIGKILL)  # the head runs on this machine: its driver is ours
        killed.add(submission)  # attempt 2 is KubeRay's retry on a new Ray cluster
    failed = wait_phase(cluster, ns, "flaky", "Failed", "Succeeded")
    assert failed["phase"] == "Failed", failed
    assert failed["error"]["reason"] == "BackoffLimitExceeded"
    assert failed["error"]["message"].startswith("failed 2 times (backoffLimit 1); last: ")
    assert failed["attempts"] == 2
    assert "adapterUri" not in failed
    rayjob = cluster.custom.get_namespaced_custom_object(
        "ray.io", "v1", ns, "rayjobs", failed["rayJobName"]
    )
    assert rayjob["status"]["jobDeploymentStatus"] == "Failed"
    assert {j["submission_id"] for j in ray_jobs_of(cluster, ns, "flaky")} == killed  # no third
