"""Per-object series: what a dashboard and the alerts read, gone with the object."""

from __future__ import annotations

from prometheus_client import REGISTRY

from kubellm_operator import metrics


def value(metric: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(metric, labels)


def test_a_deployments_readiness_and_adapter_states_replace_the_previous_ones() -> None:
    series = metrics.ObjectSeries()
    series.set("ns/m", metrics.deployment_series("ns", "m", False, ["Pending", "Loaded"]))
    assert value("kubellm_llmdeployment_ready", namespace="ns", name="m") == 0
    pending = {"namespace": "ns", "name": "m", "state": "Pending"}
    assert value("kubellm_llmdeployment_adapters", **pending) == 1
    series.set("ns/m", metrics.deployment_series("ns", "m", True, ["Loaded", "Loaded"]))
    assert value("kubellm_llmdeployment_ready", namespace="ns", name="m") == 1
    assert value("kubellm_llmdeployment_adapters", **{**pending, "state": "Loaded"}) == 2
    assert value("kubellm_llmdeployment_adapters", **pending) is None  # no stale state left


def test_a_jobs_series_follow_its_phase_and_progress_and_go_with_it() -> None:
    series = metrics.ObjectSeries()
    progress = {"step": 30, "totalSteps": 120, "loss": 1.25}
    series.set("ns/j", metrics.job_series("ns", "j", "Running", progress))
    assert value("kubellm_finetunejob_phase", namespace="ns", name="j", phase="Running") == 1
    assert value("kubellm_finetunejob_progress_ratio", namespace="ns", name="j") == 0.25
    assert value("kubellm_finetunejob_loss", namespace="ns", name="j") == 1.25
    series.set("ns/j", metrics.job_series("ns", "j", "Succeeded", progress))
    assert value("kubellm_finetunejob_phase", namespace="ns", name="j", phase="Running") is None
    series.set("ns/j", [])  # the job was deleted
    assert value("kubellm_finetunejob_step", namespace="ns", name="j") is None
    assert value("kubellm_finetunejob_phase", namespace="ns", name="j", phase="Succeeded") is None
