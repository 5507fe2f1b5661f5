"""The FineTuneJob reconcile on an in-memory cluster: the identity and RayJob created once,
only suspend changed afterwards, a missing claim waited for, a refused run stopped, the
trainer's fields left out of the patch (the runner's tests: controller/test_finetunejob.py)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from kubellm_operator.api.refs import ObjectRef
from kubellm_operator.config import OperatorConfig
from kubellm_operator.edge.events import event_body
from kubellm_operator.errors import KubeError
from kubellm_operator.service.finetunejob import status_patch, sync

NOW = "2026-12-02T10:00:00Z"
CONFIG = OperatorConfig()
SPEC: dict[str, Any] = {
    "baseModel": {"uri": "pvc://models/tiny"},
    "dataset": {"uri": "pvc://data/train.jsonl"},
    "output": {"uri": "pvc://out/adapters"},
}
KEY = ("team", "sql")


@dataclass
class JobCluster:
    objects: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    jobs: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    fail: dict[str, list[KubeError]] = field(default_factory=dict)
    events: list[tuple[str, str]] = field(default_factory=list)
    involved: list[dict[str, Any]] = field(default_factory=list)
    """The involvedObject of each Event, as the client edge posts it."""
    deployments: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    missing_claims: set[str] = field(default_factory=set)
    """PersistentVolumeClaims that do not exist; every other one does."""

    def _call(self, what: str) -> None:
        self.calls.append(what)
        if self.fail.get(what):
            raise self.fail[what].pop(0)

    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        self._call(f"apply {manifest['kind']}")
        self.objects[(manifest["kind"], manifest["metadata"]["name"])] = copy.deepcopy(manifest)
        return copy.deepcopy(manifest)

    def claim_exists(self, namespace: str, name: str) -> bool:
        return name not in self.missing_claims

    def get_rayjob(self, namespace: str, name: str) -> dict[str, Any] | None:
        self._call("get RayJob")
        found = self.objects.get(("RayJob", name))
        return copy.deepcopy(found) if found else None

    def patch_rayjob(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        self._call("patch RayJob")
        self.objects[("RayJob", name)]["spec"].update(patch["spec"])

    def delete_rayjob(self, namespace: str, name: str) -> None:
        self._call("delete RayJob")
        self.objects.pop(("RayJob", name), None)

    def delete_trainer_identity(self, namespace: str, job: str) -> None:
        self._call("delete identity")
        for kind in ("ServiceAccount", "Role", "RoleBinding"):
            self.objects.pop((kind, f"{job}-trainer"), None)

    def get_finetunejob(self, namespace: str, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.jobs.get((namespace, name)))

    def get_llmdeployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        self._call("get LLMDeployment")
        return copy.deepcopy(self.deployments.get((namespace, name)))

    def patch_finetunejob_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self._call("patch status")
        merged = {**self.jobs[(namespace, name)].get("status", {}), **status}
        self.jobs[(namespace, name)]["status"] = {k: v for k, v in merged.items() if v is not None}

    def post_event(self, ref: ObjectRef, kind: str, reason: str, message: str) -> None:
        self.events.append((kind, reason))
        self.involved.append(event_body(ref, kind, reason, message)["involvedObject"])


def body(
    spec: dict[str, Any] | None = None, status: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "kubellm.io/v1alpha1",
        "kind": "FineTuneJob",
        "metadata": {"name": "sql", "namespace": "team", "uid": "abcd1234-5678", "generation": 1},
        "spec": spec or SPEC,
        "status": status or {},
    }


def kuberay_says(cluster: JobCluster, deployment: str, job: str = "", **extra: Any) -> None:
    cluster.objects[("RayJob", "sql")]["status"] = {
        "jobDeploymentStatus": deployment,
        "jobStatus": job,
        **extra,
    }


def test_the_first_reconcile_creates_the_identity_before_the_rayjob() -> None:
    cluster = JobCluster()
    outcome = sync(ObjectRef.from_body(body()), cluster, CONFIG, NOW)
    assert cluster.calls == [
        "get RayJob",
        "apply ServiceAccount",
        "apply Role",
        "apply RoleBinding",
        "apply RayJob",
    ]
    assert outcome.status.phase == "Pending"
    assert outcome.status.ray_job_name == "sql"


def test_a_missing_claim_creates_nothing_and_the_job_waits_naming_it() -> None:
    cluster = JobCluster(missing_claims={"data"})
    waiting = sync(ObjectRef.from_body(body()), cluster, CONFIG, NOW)
    assert cluster.calls == ["get RayJob"]  # no identity, no RayJob
    assert waiting.status.phase == "Pending"
    assert waiting.recheck_s == CONFIG.claim_recheck_s
    assert "PersistentVolumeClaim data (spec.dataset.uri) not found in namespace team" in (
        waiting.status.message or ""
    )
    assert {c.type: c.reason for c in waiting.status.conditions}["Running"] == "ClaimNotFound"
    cluster.missing_claims.clear()  # the user creates it
    created = sync(ObjectRef.from_body(body()), cluster, CONFIG, NOW)
    assert cluster.calls[-1] == "apply RayJob"
    assert created.recheck_s is None


def test_an_existing_rayjob_is_never_applied_again_only_its_suspend_changes() -> None:
    cluster = JobCluster()
    sync(ObjectRef.from_body(body()), cluster, CONFIG, NOW)
    kuberay_says(cluster, "Running", "RUNNING")
    cluster.calls.clear()
    other = OperatorConfig(runtime_image="registry/new-runtime:2")  # an operator upgrade
    running = sync(ObjectRef.from_body(body()), cluster, other, NOW)
    assert cluster.calls == ["get RayJob"]
    assert running.status.phase == "Running"
    cluster.calls.clear()
    suspended = sync(ObjectRef.from_body(body({**SPEC, "suspend": True})), cluster, CONFIG, NOW)
    assert cluster.calls == ["get RayJob", "patch RayJob"]
    assert cluster.objects[("RayJob", "sql")]["spec"]["suspend"] is True
    assert suspended.status.phase == "Suspended"


def test_a_run_refused_for_its_inputs_is_stopped_and_fails_at_once() -> None:
    cluster = JobCluster()
    sync(ObjectRef.from_body(body()), cluster, CONFIG, NOW)
    error = {"reason": "InvalidDataset", "message": "line 7: missing field 'text'"}
    kuberay_says(cluster, "Retrying", "FAILED", failed=1)
    outcome = sync(ObjectRef.from_body(body(status={"error": error})), cluster, CONFIG, NOW)
    assert ("RayJob", "sql") not in cluster.objects  # KubeRay will not retry it
    assert outcome.status.phase == "Failed"
    assert outcome.status.error is not None
    assert outcome.status.error.message == error["message"]


def test_a_patch_keeps_the_adapter_location_to_the_trainer() -> None:
    cluster = JobCluster()
    ref = ObjectRef.from_body(body(status={"adapterUri": "pvc://x"}))
    sync(ref, cluster, CONFIG, NOW)
    kuberay_says(cluster, "Complete", "SUCCEEDED")
    outcome = sync(ref, cluster, CONFIG, NOW)
    assert outcome.status.adapter_uri == "pvc://x"
    assert "adapterUri" not in status_patch(outcome, ref.status)
