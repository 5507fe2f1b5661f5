"""The reconcile service on an in-memory cluster: writes only what changed, never a bad child."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

from kubellm_operator.config import OperatorConfig
from kubellm_operator.errors import KubeError
from kubellm_operator.service.handoffs import HandOff, HandOffIndex
from kubellm_operator.service.llmdeployment import ObjectRef, is_subset, sync
from kubellm_operator.status.rayhead import ServedModels

NOW = "2026-11-22T10:00:00Z"


@dataclass
class MemoryCluster:
    """An LLMDeploymentCluster that keeps objects in dicts and counts writes, as an API server
    would.

    ``fail`` injects API failures: each call of the named method raises the next error queued
    for it, until none is left.
    """

    rayservices: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    rayclusters: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    finetunejobs: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    llmdeployments: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    pods: list[dict[str, Any]] = field(default_factory=list)
    fail: dict[str, list[KubeError]] = field(default_factory=dict)
    heads: dict[tuple[str, str], dict[str, Any] | None] = field(default_factory=dict)
    """What each Ray head's dashboard answers; by default it runs its RayService's config."""
    listings: dict[tuple[str, str], ServedModels] = field(default_factory=dict)
    """What each RayService's /v1/models lists; by default its config's model and adapters."""
    secrets: dict[tuple[str, str, str], str] = field(default_factory=dict)
    probes: list[tuple[str, str, str | None]] = field(default_factory=list)
    """Each /v1/models probe: (namespace, RayService, API key sent)."""
    writes: int = 0
    missing_claims: set[tuple[str, str]] = field(default_factory=set)
    """PersistentVolumeClaims that do not exist (namespace, name); every other one does."""

    def _maybe_fail(self, method: str) -> None:
        if self.fail.get(method):
            raise self.fail[method].pop(0)

    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        self._maybe_fail("apply")
        self.writes += 1
        key = (manifest["metadata"]["namespace"], manifest["metadata"]["name"])
        stored = copy.deepcopy(manifest)
        before = self.rayservices.get(key, {})
        generation = before.get("metadata", {}).get("generation", 0)
        if before.get("spec") != stored["spec"]:
            generation += 1  # what the server does on a spec change
        stored["metadata"].update(resourceVersion=str(self.writes), generation=generation)
        if "status" in before:
            stored["status"] = before["status"]
        self.rayservices[key] = stored
        return copy.deepcopy(stored)

    def get_rayservice(self, namespace: str, name: str) -> dict[str, Any] | None:
        self._maybe_fail("get_rayservice")
        found = self.rayservices.get((namespace, name))
        return copy.deepcopy(found) if found else None

    def get_raycluster(self, namespace: str, name: str) -> dict[str, Any] | None:
        found = self.rayclusters.get((namespace, name))
        return copy.deepcopy(found) if found else None

    def list_pending_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        self._maybe_fail("list_pending_pods")
        return [p for p in self.pods if (p.get("status") or {}).get("phase") == "Pending"]

    def get_finetunejob(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.finetunejobs.get((namespace, name))

    def list_finetunejobs(self, namespace: str) -> list[dict[str, Any]]:
        return [
            copy.deepcopy(b) for (ns, _), b in sorted(self.finetunejobs.items()) if ns == namespace
        ]

    def list_handoffs(self, namespace: str, name: str) -> tuple[HandOff, ...]:
        index = HandOffIndex()
        for body in self.list_finetunejobs(namespace):
            index.job_changed(body, deleted=False)
        return index.for_deployment(namespace, name)

    def serve_details(self, namespace: str, cluster: str) -> dict[str, Any] | None:
        if (namespace, cluster) in self.heads:
            return self.heads[(namespace, cluster)]
        for (ns, _), rs in self.rayservices.items():
            active = (rs.get("status") or {}).get("activeServiceStatus") or {}
            if ns == namespace and active.get("rayClusterName") == cluster:
                (app,) = yaml.safe_load(rs["spec"]["serveConfigV2"])["applications"]
                running = {"status": "RUNNING", "deployed_app_config": app}
                return {"applications": {app["name"]: running}}
        return None

    def served_models(self, namespace: str, rayservice: str, api_key: str | None) -> ServedModels:
        self.probes.append((namespace, rayservice, api_key))
        if (namespace, rayservice) in self.listings:
            return self.listings[(namespace, rayservice)]
        rs = self.rayservices.get((namespace, rayservice))
        if rs is None:
            return ServedModels(error="answered HTTP 503")
        (app,) = yaml.safe_load(rs["spec"]["serveConfigV2"])["applications"]
        (model,) = app["deployments"]
        adapters = model.get("user_config", {}).get("adapters", [])
        served = [app["args"]["model"]["served_name"], *(a["name"] for a in adapters)]
        return ServedModels(models=frozenset(served))

    def claim_exists(self, namespace: str, name: str) -> bool:
        self._maybe_fail("claim_exists")
        return (namespace, name) not in self.missing_claims

    def read_secret_key(self, namespace: str, name: str, key: str) -> str | None:
        self._maybe_fail("read_secret_key")
        return self.secrets.get((namespace, name, key))

    def get_llmdeployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        self._maybe_fail("get_llmdeployment")
        found = self.llmdeployments.get((namespace, name))
        return copy.deepcopy(found) if found else None

    def list_llmdeployments(self, namespaces: tuple[str, ...]) -> list[dict[str, Any]]:
        self._maybe_fail("list_llmdeployments")
        return [
            copy.deepcopy(body)
            for (ns, _), body in sorted(self.llmdeployments.items())
            if not namespaces or ns in namespaces
        ]

    def patch_llmdeployment_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self._maybe_fail("patch_llmdeployment_status")
        self.writes += 1
        obj = self.llmdeployments.get((namespace, name))
        if obj is not None:  # a merge patch: None deletes the field
            merged = {**obj.get("status", {}), **status}
            obj["status"] = {k: v for k, v in merged.items() if v is not None}


def ref(spec: dict[str, Any], generation: int = 1) -> ObjectRef:
    return ObjectRef(
        api_version="kubellm.io/v1alpha1",
        kind="LLMDeployment",
        name="m",
        namespace="ns",
        uid="uid-1",
        generation=generation,
        spec=spec,
        status={},
    )


SPEC = {"model": {"uri": "hf://a/b"}, "placement": {"nodePool": "a100-80gb"}}


def test_first_sync_creates_the_child_and_the_next_writes_nothing() -> None:
    cluster = MemoryCluster()
    first = sync(ref(SPEC), cluster, OperatorConfig(), NOW)
    assert first.applied
    assert ("ns", "m") in cluster.rayservices
    reconciled = replace(ref(SPEC), status=first.status.to_wire())
    second = sync(reconciled, cluster, OperatorConfig(), NOW)
    assert not second.applied
    assert cluster.writes == 1


def test_an_object_never_reconciled_is_applied_without_reading_its_child_first() -> None:
    cluster = MemoryCluster(fail={"get_rayservice": [KubeError(500, "must not be read")]})
    assert sync(ref(SPEC), cluster, OperatorConfig(), NOW).applied
    assert cluster.fail["get_rayservice"]  # never called


def test_a_spec_change_rewrites_the_child() -> None:
    cluster = MemoryCluster()
    sync(ref(SPEC), cluster, OperatorConfig(), NOW)
    sync(ref({**SPEC, "replicas": 3}, generation=2), cluster, OperatorConfig(), NOW)
    serve = yaml.safe_load(cluster.rayservices[("ns", "m")]["spec"]["serveConfigV2"])
    assert serve["applications"][0]["deployments"][0]["num_replicas"] == 3
    assert cluster.writes == 2


def test_an_invalid_spec_creates_nothing_and_says_why() -> None:
    cluster = MemoryCluster()
    outcome = sync(
        ref({"model": {"uri": "hf://a/b"}, "replicas": -1}), cluster, OperatorConfig(), NOW
    )
    assert outcome.invalid is not None
    assert "spec.replicas" in outcome.invalid
    assert cluster.rayservices == {}
    assert outcome.status.conditions[0].reason == "InvalidSpec"


def test_a_missing_claim_creates_nothing_names_claim_and_field_and_is_looked_at_again() -> None:
    cluster = MemoryCluster(missing_claims={("ns", "models")})
    spec = {**SPEC, "model": {"uri": "pvc://models/llama"}}
    waiting = sync(ref(spec), cluster, OperatorConfig(claim_recheck_s=7), NOW)
    assert cluster.rayservices == {}
    assert not waiting.applied
    assert waiting.recheck_s == 7
    ready = waiting.status.conditions[0]
    assert (ready.type, ready.status, ready.reason) == ("Ready", "False", "ClaimNotFound")
    assert "PersistentVolumeClaim models (spec.model.uri) not found in namespace ns" in (
        ready.message or ""
    )
    assert waiting.status.phase == "Pending"
    assert next(c for c in waiting.status.conditions if c.type == "Stalled").status == "False"

    cluster.missing_claims.clear()  # the user creates it
    created = sync(
        replace(ref(spec), status=waiting.status.to_wire()), cluster, OperatorConfig(), NOW
    )
    assert created.applied
    assert created.recheck_s is None


def test_a_spec_change_to_a_missing_claim_keeps_the_serving_child() -> None:
    cluster = MemoryCluster(missing_claims={("ns", "adapters")})
    first = sync(ref(SPEC), cluster, OperatorConfig(), NOW)
    before = copy.deepcopy(cluster.rayservices[("ns", "m")])
    lora = {**SPEC, "enableLora": True, "adapters": [{"name": "a", "uri": "pvc://adapters/a"}]}
    changed = sync(
        replace(ref(lora, generation=2), status=first.status.to_wire()),
        cluster,
        OperatorConfig(),
        NOW,
    )
    assert not changed.applied
    assert cluster.rayservices[("ns", "m")] == before  # the old spec keeps serving
    ready = changed.status.conditions[0]
    assert ready.reason == "ClaimNotFound"
    assert "adapters (spec.adapters[0].uri)" in (ready.message or "")


def test_a_deleted_child_is_recreated() -> None:
    cluster = MemoryCluster()
    sync(ref(SPEC), cluster, OperatorConfig(), NOW)
    cluster.rayservices.clear()
    assert sync(ref(SPEC), cluster, OperatorConfig(), NOW).applied
    assert ("ns", "m") in cluster.rayservices


def test_adapters_from_a_finetunejob_wait_for_its_adapter_uri() -> None:
    cluster = MemoryCluster()
    spec = {**SPEC, "adapters": [{"name": "tuned", "fromFineTuneJob": "job1"}]}
    pending = sync(ref(spec), cluster, OperatorConfig(), NOW)
    assert [(a.state, a.message) for a in pending.status.adapters] == [
        ("Pending", "FineTuneJob job1 not found")
    ]
    cluster.finetunejobs[("ns", "job1")] = {
        "spec": {"baseModel": {"uri": SPEC["model"]["uri"]}},
        "status": {"phase": "Succeeded", "adapterUri": "s3://out/job1"},
    }
    done = sync(ref(spec), cluster, OperatorConfig(), NOW)
    assert done.applied  # the serve config now carries the adapter
    serve = yaml.safe_load(cluster.rayservices[("ns", "m")]["spec"]["serveConfigV2"])
    assert serve["applications"][0]["deployments"][0]["user_config"]["adapters"] == [
        {"name": "tuned", "uri": "s3://out/job1"}
    ]


def test_an_adapter_from_a_job_trained_on_another_model_is_refused_naming_both() -> None:
    job = {
        "spec": {"baseModel": {"uri": "hf://other/model"}},
        "status": {"phase": "Succeeded", "adapterUri": "s3://out/job1"},
    }
    cluster = MemoryCluster(finetunejobs={("ns", "job1"): job})
    spec = {**SPEC, "adapters": [{"name": "tuned", "fromFineTuneJob": "job1"}]}
    outcome = sync(ref(spec), cluster, OperatorConfig(), NOW)
    (state,) = outcome.status.adapters
    assert state.state == "Failed"
    assert state.message == (
        f"FineTuneJob job1 trained on hf://other/model, but this deployment serves "
        f"{SPEC['model']['uri']}: not loaded"
    )
    serve = yaml.safe_load(cluster.rayservices[("ns", "m")]["spec"]["serveConfigV2"])
    assert serve["applications"][0]["deployments"][0]["user_config"]["adapters"] == []


def test_a_failed_finetunejob_marks_its_adapter_failed() -> None:
    cluster = MemoryCluster(finetunejobs={("ns", "job1"): {"status": {"phase": "Failed"}}})
    spec = {**SPEC, "adapters": [{"name": "tuned", "fromFineTuneJob": "job1"}]}
    outcome = sync(ref(spec), cluster, OperatorConfig(), NOW)
    assert outcome.status.adapters[0].state == "Failed"
    adapters = next(c for c in outcome.status.conditions if c.type == "AdaptersReady")
    assert (adapters.status, adapters.reason) == ("False", "AdapterUnavailable")


def test_subset_ignores_what_the_server_adds_but_not_what_we_changed() -> None:
    desired = {"spec": {"a": 1, "list": [{"x": 1}]}}
    assert is_subset(desired, {"spec": {"a": 1, "b": 2, "list": [{"x": 1, "default": True}]}})
    assert not is_subset(desired, {"spec": {"a": 2, "list": [{"x": 1}]}})
    assert not is_subset(desired, {"spec": {"a": 1, "list": [{"x": 1}, {"x": 2}]}})


def test_worker_readiness_is_read_from_the_serving_raycluster() -> None:
    cluster = MemoryCluster()
    sync(ref(SPEC), cluster, OperatorConfig(), NOW)
    child = cluster.rayservices[("ns", "m")]
    child["status"] = {
        "activeServiceStatus": {
            "rayClusterName": "m-x1",
            "rayClusterStatus": {"readyWorkerReplicas": 0, "desiredWorkerReplicas": 1},
        }
    }
    cluster.rayclusters[("ns", "m-x1")] = {
        "status": {"state": "ready", "readyWorkerReplicas": 1, "desiredWorkerReplicas": 1}
    }
    outcome = sync(ref(SPEC), cluster, OperatorConfig(), NOW)
    ready = next(c for c in outcome.status.conditions if c.type == "RayClusterReady")
    assert (ready.status, ready.reason) == ("True", "ClusterReady")


def test_an_api_failure_is_part_of_the_outcome_and_of_the_status() -> None:
    cluster = MemoryCluster()
    cluster.fail["apply"] = [KubeError(403, "apply RayService m: rayservices is forbidden")]
    outcome = sync(ref(SPEC), cluster, OperatorConfig(), NOW)
    assert outcome.error is not None
    assert outcome.error.reason == "Forbidden"
    assert cluster.rayservices == {}
    ready = next(c for c in outcome.status.conditions if c.type == "Ready")
    assert (ready.status, ready.reason) == ("False", "Forbidden")
    assert "rayservices is forbidden" in ready.message
    assert sync(ref(SPEC), cluster, OperatorConfig(), NOW).error is None  # next try works


def test_a_failed_read_after_the_apply_keeps_what_was_written() -> None:
    cluster = MemoryCluster()
    cluster.fail["list_pending_pods"] = [KubeError(500, "list pods: etcd timeout")]
    outcome = sync(ref(SPEC), cluster, OperatorConfig(), NOW)
    assert outcome.applied
    assert outcome.error is not None
    assert ("ns", "m") in cluster.rayservices
    assert next(c for c in outcome.status.conditions if c.type == "Reconciling").status == "True"


def serving(cluster: MemoryCluster, spec: dict[str, Any]) -> None:
    """The RayService of ``spec`` observed, Ready and RUNNING on cluster m-x1."""
    sync(ref(spec), cluster, OperatorConfig(), NOW)
    child = cluster.rayservices[("ns", "m")]
    child["status"] = {
        "observedGeneration": child["metadata"]["generation"],
        "conditions": [{"type": "Ready", "status": "True"}],
        "activeServiceStatus": {
            "rayClusterName": "m-x1",
            "applicationStatuses": {"llm": {"status": "RUNNING"}},
        },
    }
    cluster.rayclusters[("ns", "m-x1")] = {
        "metadata": {"name": "m-x1"},
        "status": {"state": "ready"},
    }


def test_ready_is_confirmed_with_the_head_that_serves() -> None:
    """KubeRay says RUNNING at the current generation; the head decides whether the config
    it runs is the current one."""
    cluster = MemoryCluster()
    serving(cluster, SPEC)

    def ready() -> tuple[str, str]:
        cond = next(
            c
            for c in sync(ref(SPEC), cluster, OperatorConfig(), NOW).status.conditions
            if c.type == "Ready"
        )
        return cond.status, cond.reason

    assert ready() == ("True", "Serving")
    stale = {"status": "RUNNING", "deployed_app_config": {"args": {"model": {"uri": "old"}}}}
    cluster.heads[("ns", "m-x1")] = {"applications": {"llm": stale}}
    assert ready() == ("False", "Deploying")
    cluster.heads[("ns", "m-x1")] = None  # the dashboard does not answer
    assert ready() == ("False", "ConfirmingConfig")


LORA = {**SPEC, "enableLora": True, "adapters": [{"name": "sql", "uri": "s3://bucket-b/sql"}]}


def test_an_adapter_is_loaded_once_the_serve_endpoint_lists_it_asked_with_the_api_key() -> None:
    spec = {**LORA, "apiKeySecretRef": {"name": "keys", "key": "api"}}
    cluster = MemoryCluster(secrets={("ns", "keys", "api"): "sk-1"})
    serving(cluster, spec)
    outcome = sync(ref(spec), cluster, OperatorConfig(), NOW)
    assert [(a.name, a.state) for a in outcome.status.adapters] == [("sql", "Loaded")]
    assert cluster.probes[-1] == ("ns", "m", "sk-1")
    assert not outcome.recheck


def test_an_adapter_the_serving_replica_does_not_list_stays_pending_and_is_asked_again() -> None:
    cluster = MemoryCluster(listings={("ns", "m"): ServedModels(models=frozenset({"b"}))})
    serving(cluster, LORA)
    outcome = sync(ref(LORA), cluster, OperatorConfig(), NOW)
    assert [(a.state, a.message) for a in outcome.status.adapters] == [
        ("Pending", "not listed by the serving replica's /v1/models yet")
    ]
    ready = next(c for c in outcome.status.conditions if c.type == "Ready")
    assert (ready.status, ready.reason) == ("False", "AdaptersPending")
    assert outcome.recheck  # nothing in Kubernetes will say when it is listed


def test_a_missing_api_key_is_named_instead_of_probing_without_it() -> None:
    spec = {**LORA, "apiKeySecretRef": {"name": "keys", "key": "api"}}
    cluster = MemoryCluster()
    serving(cluster, spec)
    outcome = sync(ref(spec), cluster, OperatorConfig(), NOW)
    (adapter,) = outcome.status.adapters
    assert adapter.message == "cannot confirm it is served: Secret keys has no key api to send"
    assert cluster.probes == []


def test_without_adapters_the_serve_endpoint_is_not_probed() -> None:
    cluster = MemoryCluster()
    serving(cluster, SPEC)
    outcome = sync(ref(SPEC), cluster, OperatorConfig(), NOW)
    assert next(c for c in outcome.status.conditions if c.type == "Ready").status == "True"
    assert cluster.probes == []
