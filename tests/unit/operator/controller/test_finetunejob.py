"""The FineTuneJob runner on an in-memory cluster: status written only when it changed, the
trainer's fields never overwritten, Events about the job itself, a finished job's children
deleted once its TTL is due, API failures retried with the reason on the status."""

from __future__ import annotations

from kubellm_operator.controller.finetunejob import Reconciler
from kubellm_operator.errors import KubeError
from tests.unit.operator.service.test_finetunejob import (
    CONFIG,
    KEY,
    NOW,
    SPEC,
    JobCluster,
    body,
    kuberay_says,
)


def test_the_operator_never_writes_over_the_trainers_fields() -> None:
    cluster = JobCluster()
    cluster.jobs[KEY] = body()
    reconcile = Reconciler(cluster, CONFIG, cluster.post_event, clock=lambda: NOW)
    assert reconcile(KEY)
    kuberay_says(cluster, "Running", "RUNNING")
    cluster.jobs[KEY]["status"]["progress"] = {"step": 4, "totalSteps": 10}
    reconcile.forget(KEY)
    assert reconcile(KEY)
    assert cluster.jobs[KEY]["status"]["progress"] == {"step": 4, "totalSteps": 10}
    assert cluster.jobs[KEY]["status"]["phase"] == "Running"
    kuberay_says(cluster, "Complete", "SUCCEEDED", endTime="2026-12-02T10:05:00Z")
    cluster.jobs[KEY]["status"] |= {"adapterUri": "pvc://out/adapters/sql-abcd1234"}
    cluster.jobs[KEY]["status"] |= {"error": {"reason": "TrainingFailed", "message": "retried"}}
    reconcile.forget(KEY)
    assert reconcile(KEY)
    status = cluster.jobs[KEY]["status"]
    assert status["phase"] == "Succeeded"
    assert status["adapterUri"] == "pvc://out/adapters/sql-abcd1234"
    assert "error" not in status  # the retried attempt's error went with the success
    assert cluster.events == [("Normal", "Pending"), ("Normal", "Running"), ("Normal", "Succeeded")]


def test_every_event_is_about_the_finetunejob_itself() -> None:
    """`kubectl describe ftj` lists the Events whose involvedObject is the job (kind and uid);
    an Event naming another kind is shown under no object."""
    cluster = JobCluster()
    cluster.jobs[KEY] = body()
    reconcile = Reconciler(cluster, CONFIG, cluster.post_event, clock=lambda: NOW)
    reconcile(KEY)  # from the API's body
    kuberay_says(cluster, "Failed", "FAILED", reason="DeadlineExceeded")
    reconcile(KEY)  # from the body kept from its own write
    assert [reason for _, reason in cluster.events] == ["Pending", "Failed"]
    expected = {
        "apiVersion": "kubellm.io/v1alpha1",
        "kind": "FineTuneJob",
        "name": "sql",
        "namespace": "team",
        "uid": "abcd1234-5678",
    }
    assert cluster.involved == [expected, expected]


def test_nothing_is_written_when_nothing_changed() -> None:
    cluster = JobCluster()
    cluster.jobs[KEY] = body()
    reconcile = Reconciler(cluster, CONFIG, cluster.post_event, clock=lambda: NOW)
    reconcile(KEY)
    cluster.calls.clear()
    reconcile(KEY)  # the echo of its own write, or a progress write of the trainer
    assert "patch status" not in cluster.calls


def test_an_api_failure_is_retried_with_the_reason_on_the_status() -> None:
    cluster = JobCluster(fail={"apply RayJob": [KubeError(404, "rayjobs.ray.io is not served")]})
    cluster.jobs[KEY] = body()
    reconcile = Reconciler(cluster, CONFIG, cluster.post_event, clock=lambda: NOW)
    assert reconcile(KEY) is False  # the queue retries it with backoff
    status = cluster.jobs[KEY]["status"]
    assert (status["phase"], status["conditions"][0]["reason"]) == ("Pending", "KubeRayMissing")
    reconcile.forget(KEY)
    assert reconcile(KEY) is True
    assert ("RayJob", "sql") in cluster.objects


def test_a_handed_off_job_is_deployed_once_its_deployment_serves_the_adapter() -> None:
    cluster = JobCluster()
    cluster.jobs[KEY] = body({**SPEC, "deployTo": "llama"})
    reconcile = Reconciler(cluster, CONFIG, cluster.post_event, clock=lambda: NOW)
    reconcile(KEY)
    assert "get LLMDeployment" not in cluster.calls  # not before training succeeded
    kuberay_says(cluster, "Complete", "SUCCEEDED")
    uri = "pvc://out/adapters/sql-abcd1234"
    cluster.jobs[KEY]["status"]["adapterUri"] = uri
    llmd = {"metadata": {"generation": 2}, "status": {"observedGeneration": 2, "adapters": []}}
    cluster.deployments[("team", "llama")] = llmd
    reconcile.forget(KEY)
    reconcile(KEY)

    def deployed() -> tuple[str, str]:
        found = next(
            c for c in cluster.jobs[KEY]["status"]["conditions"] if c["type"] == "Deployed"
        )
        return found["status"], found["reason"]

    assert deployed() == ("False", "HandingOff")
    llmd["status"]["adapters"] = [{"name": "sql", "state": "Loaded", "uri": uri}]
    reconcile.forget(KEY)
    reconcile(KEY)  # final already: no RayJob call, only the deployment is read
    assert deployed() == ("True", "Served")
    assert cluster.jobs[KEY]["status"]["phase"] == "Succeeded"


def test_a_finished_jobs_children_go_when_its_ttl_is_due_and_the_job_stays() -> None:
    cluster = JobCluster()
    spec = {**SPEC, "ttlSecondsAfterFinished": 600}
    cluster.jobs[KEY] = body(spec)
    clock = ["2026-12-02T10:00:00Z"]
    reconcile = Reconciler(cluster, CONFIG, cluster.post_event, clock=lambda: clock[0])
    reconcile(KEY)
    kuberay_says(cluster, "Complete", "SUCCEEDED", endTime="2026-12-02T10:05:00Z")
    cluster.jobs[KEY]["status"]["adapterUri"] = "pvc://out/adapters/sql-abcd1234"
    reconcile.forget(KEY)
    clock[0] = "2026-12-02T10:05:30Z"
    reconcile(KEY)  # writes Succeeded, completed at KubeRay's end time
    assert cluster.jobs[KEY]["status"]["completionTime"] == "2026-12-02T10:05:00Z"
    cluster.calls.clear()
    reconcile.forget(KEY)
    assert reconcile(KEY) == 570.0  # the queue comes back when the TTL falls due
    assert cluster.calls == []
    clock[0] = "2026-12-02T10:15:00Z"
    reconcile.forget(KEY)
    assert reconcile(KEY) is True
    assert cluster.calls == ["get RayJob", "delete identity", "delete RayJob"]
    assert not cluster.objects  # RayJob (and so its Ray cluster), ServiceAccount, Role, Binding
    assert cluster.jobs[KEY]["status"]["phase"] == "Succeeded"
    cluster.calls.clear()
    reconcile.forget(KEY)
    assert reconcile(KEY) is True
    assert cluster.calls == ["get RayJob"]  # gone: nothing more to delete


def test_a_zero_ttl_deletes_the_children_as_soon_as_the_job_is_final() -> None:
    cluster = JobCluster()
    cluster.jobs[KEY] = body({**SPEC, "ttlSecondsAfterFinished": 0})
    reconcile = Reconciler(cluster, CONFIG, cluster.post_event, clock=lambda: NOW)
    reconcile(KEY)
    kuberay_says(cluster, "Failed", "FAILED", reason="DeadlineExceeded")
    reconcile.forget(KEY)
    reconcile(KEY)
    assert cluster.jobs[KEY]["status"]["error"]["reason"] == "DeadlineExceeded"
    reconcile.forget(KEY)
    assert reconcile(KEY) is True
    assert not cluster.objects
