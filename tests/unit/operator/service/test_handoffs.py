"""Hand-offs (FineTuneJob.spec.deployTo): the deployment serves a succeeded job's adapter
under its name, refuses one trained on another model or under a taken name (both named),
and the index the watch keeps says which deployments to reconcile when a job changes."""

from __future__ import annotations

from typing import Any

import yaml

from kubellm_operator.config import OperatorConfig
from kubellm_operator.service.handoffs import HandOffIndex
from kubellm_operator.service.llmdeployment import sync
from tests.unit.operator.service.test_llmdeployment import NOW, MemoryCluster, ref

SPEC: dict[str, Any] = {"model": {"uri": "hf://a/b"}, "enableLora": True}


def job(name: str, phase: str | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {
            "baseModel": {"uri": "hf://a/b"},
            "output": {"uri": "pvc://out/adapters"},
            "deployTo": "m",
            **spec,
        },
        "status": {},
    }
    if phase:
        body["status"]["phase"] = phase
    if phase == "Succeeded":
        body["status"]["adapterUri"] = f"pvc://out/adapters/{name}-1234"
    return body


def served_adapters(cluster: MemoryCluster) -> list[dict[str, str]]:
    serve = yaml.safe_load(cluster.rayservices[("ns", "m")]["spec"]["serveConfigV2"])
    return list(serve["applications"][0]["deployments"][0]["user_config"]["adapters"])


def test_a_succeeded_job_is_served_under_its_adapter_name() -> None:
    cluster = MemoryCluster()
    cluster.finetunejobs[("ns", "sql")] = job(
        "sql", output={"uri": "pvc://out/adapters", "adapterName": "sql-v1"}
    )
    waiting = sync(ref(SPEC), cluster, OperatorConfig(), NOW)
    assert [(a.name, a.state) for a in waiting.status.adapters] == [("sql-v1", "Pending")]
    assert "waiting for FineTuneJob sql" in waiting.status.adapters[0].message
    assert served_adapters(cluster) == []
    done = job("sql", "Succeeded", output={"uri": "pvc://out/adapters", "adapterName": "sql-v1"})
    cluster.finetunejobs[("ns", "sql")] = done
    outcome = sync(ref(SPEC), cluster, OperatorConfig(), NOW)
    assert outcome.applied  # through user_config: Ray Serve applies it with no restart
    assert served_adapters(cluster) == [{"name": "sql-v1", "uri": "pvc://out/adapters/sql-1234"}]


def test_an_adapter_of_another_base_model_is_refused_naming_both() -> None:
    cluster = MemoryCluster()
    cluster.finetunejobs[("ns", "sql")] = job("sql", "Succeeded", baseModel={"uri": "hf://x/y"})
    outcome = sync(ref(SPEC), cluster, OperatorConfig(), NOW)
    (state,) = outcome.status.adapters
    assert state.state == "Failed"
    assert "trained on hf://x/y" in state.message
    assert "serves hf://a/b" in state.message
    assert served_adapters(cluster) == []


def test_a_taken_name_is_refused_so_a_new_version_needs_a_new_name() -> None:
    cluster = MemoryCluster()
    cluster.finetunejobs[("ns", "v1")] = job(
        "v1", "Succeeded", output={"uri": "pvc://o", "adapterName": "sql"}
    )
    cluster.finetunejobs[("ns", "v2")] = job(
        "v2", "Succeeded", output={"uri": "pvc://o", "adapterName": "sql"}
    )
    outcome = sync(ref(SPEC), cluster, OperatorConfig(), NOW)
    assert [(a.name, a.state) for a in outcome.status.adapters] == [
        ("sql", "Pending"),
        ("sql", "Failed"),
    ]
    assert "the name sql is taken" in outcome.status.adapters[1].message
    assert served_adapters(cluster) == [{"name": "sql", "uri": "pvc://out/adapters/v1-1234"}]


def test_the_index_names_the_deployments_a_job_change_concerns() -> None:
    index = HandOffIndex()
    assert index.job_changed(job("sql"), deleted=False) == {("ns", "m")}
    assert index.job_changed(job("sql"), deleted=False) == set()  # nothing changed
    assert index.job_changed(job("sql", "Succeeded"), deleted=False) == {("ns", "m")}
    (offered,) = index.for_deployment("ns", "m")
    assert offered.adapter_uri == "pvc://out/adapters/sql-1234"
    assert index.jobs_for("ns", "m") == [("ns", "sql")]
    moved = job("sql", "Succeeded", deployTo="other")
    assert index.job_changed(moved, deleted=False) == {("ns", "m"), ("ns", "other")}
    assert index.for_deployment("ns", "m") == ()
    assert index.job_changed(moved, deleted=True) == {("ns", "other")}
    assert index.jobs_for("ns", "other") == []
    assert index.job_changed(job("plain", deployTo=None), deleted=False) == set()
