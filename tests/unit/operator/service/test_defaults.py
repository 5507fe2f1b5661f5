"""A fleet under an operator upgrade: nothing moves by itself; paced, one moves at a time."""

from __future__ import annotations

import copy
from typing import Any

from kubellm_operator.api.refs import ObjectRef
from kubellm_operator.config import OperatorConfig
from kubellm_operator.controller.llmdeployment import Reconciler
from kubellm_operator.errors import KubeError
from kubellm_operator.service.defaults import ADOPT_ANNOTATION
from tests.unit.operator.service.test_llmdeployment import MemoryCluster

SPEC = {"model": {"uri": "hf://a/b"}}
FLEET = ("a", "b", "c")
OLD = OperatorConfig(runtime_image="kubellm-runtime:0.1.0")
NEW = OperatorConfig(runtime_image="kubellm-runtime:0.2.0")
PACED = NEW.model_copy(update={"defaults_rollout": "paced", "defaults_recheck_s": 4.0})


class Fleet:
    """Deployments on a MemoryCluster, reconciled by an operator process (a Reconciler: the
    path the work queue runs); a new configuration is a new process, as a helm upgrade is."""

    def __init__(self, config: OperatorConfig) -> None:
        self.cluster = MemoryCluster()
        for name in FLEET:
            self.cluster.llmdeployments[("ns", name)] = {
                "apiVersion": "kubellm.io/v1alpha1",
                "kind": "LLMDeployment",
                "metadata": {
                    "name": name,
                    "namespace": "ns",
                    "uid": f"uid-{name}",
                    "generation": 1,
                    "creationTimestamp": "2026-12-03T10:00:00Z",
                },
                "spec": SPEC,
            }
        self.restart(config)

    def restart(self, config: OperatorConfig) -> None:
        config = config.model_copy(update={"status_interval_s": 0})
        self.events: list[tuple[str, str]] = []
        self.operator = Reconciler(self.cluster, config, self._event)

    def _event(self, ref: ObjectRef, kind: str, reason: str, message: str) -> None:
        self.events.append((ref.name, reason))

    def sync(self, name: str) -> bool | float:
        return self.operator(("ns", name), None)

    def annotate(self, name: str, value: str) -> None:
        meta = self.cluster.llmdeployments[("ns", name)]["metadata"]
        meta["annotations"] = {ADOPT_ANNOTATION: value}

    @property
    def status(self) -> dict[str, dict[str, Any]]:
        return {n: b.get("status", {}) for (_, n), b in self.cluster.llmdeployments.items()}

    def serves(self, name: str) -> None:
        """KubeRay and the head report the current RayService served."""
        child = self.cluster.rayservices[("ns", name)]
        child["status"] = {
            "observedGeneration": child["metadata"]["generation"],
            "conditions": [{"type": "Ready", "status": "True"}],
            "activeServiceStatus": {
                "rayClusterName": f"{name}-x{child['metadata']['generation']}",
                "applicationStatuses": {"llm": {"status": "RUNNING"}},
            },
        }
        cluster = f"{name}-x{child['metadata']['generation']}"
        self.cluster.rayclusters[("ns", cluster)] = {
            "metadata": {"name": cluster},
            "status": {"state": "ready"},
        }

    def image(self, name: str) -> str:
        child = self.cluster.rayservices[("ns", name)]
        return str(child["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]
                   ["containers"][0]["image"])  # fmt: skip

    def state(self, name: str) -> str:
        return str(self.status[name]["defaults"]["state"])

    def ready(self, name: str) -> bool:
        return self.status[name]["conditions"][0]["status"] == "True"


def serving_fleet() -> Fleet:
    fleet = Fleet(OLD)
    for name in FLEET:
        fleet.sync(name)
        fleet.serves(name)
        fleet.sync(name)
        assert fleet.ready(name)
        assert fleet.state(name) == "Current"
    return fleet


def test_an_operator_upgrade_changes_no_rayservice() -> None:
    fleet = serving_fleet()
    before = copy.deepcopy(fleet.cluster.rayservices)
    fleet.restart(NEW)
    for name in FLEET:
        fleet.sync(name)
        assert fleet.state(name) == "Outdated"
        assert fleet.ready(name)
        assert "kubellm-runtime:0.2.0" in fleet.status[name]["defaults"]["message"]
    assert fleet.cluster.rayservices == before  # not one write to any RayService


def test_the_annotation_moves_one_deployment_and_leaves_the_others() -> None:
    fleet = serving_fleet()
    fleet.restart(NEW)
    fleet.sync("a")
    latest = fleet.status["a"]["defaults"]["latestRevision"]
    fleet.annotate("a", latest)
    fleet.sync("a")
    assert fleet.image("a") == "kubellm-runtime:0.2.0"
    assert fleet.state("a") == "Upgrading"
    assert not fleet.ready("a")
    fleet.serves("a")
    fleet.sync("a")
    assert fleet.state("a") == "Current"
    assert fleet.ready("a")
    assert fleet.status["a"]["defaults"]["revision"] == latest
    moves = [reason for name, reason in fleet.events if name == "a" and "Defaults" in reason]
    assert moves == ["DefaultsOutdated", "DefaultsUpgrading", "DefaultsCurrent"]
    for name in ("b", "c"):
        fleet.sync(name)
        assert fleet.image(name) == "kubellm-runtime:0.1.0"
        assert fleet.state(name) == "Outdated"


def test_a_paced_rollout_moves_one_deployment_at_a_time_each_after_the_last_is_ready() -> None:
    fleet = serving_fleet()
    fleet.restart(PACED)
    order: list[str] = []
    for _ in FLEET:
        again = {name: fleet.sync(name) for name in FLEET}
        moving = [n for n in FLEET if fleet.state(n) == "Upgrading"]
        assert len(moving) == 1, fleet.status
        (name,) = moving
        order.append(name)
        for other in FLEET:
            if fleet.state(other) == "Queued":
                assert fleet.image(other) == "kubellm-runtime:0.1.0"
                assert again[other] == 4.0  # looks for a free slot again
        assert fleet.image(name) == "kubellm-runtime:0.2.0"
        fleet.serves(name)
        fleet.sync(name)
        assert fleet.state(name) == "Current"
        assert fleet.ready(name)
    assert sorted(order) == sorted(FLEET)
    assert all(fleet.image(n) == "kubellm-runtime:0.2.0" for n in FLEET)


def test_a_rollout_that_never_gets_ready_holds_the_fleet() -> None:
    fleet = serving_fleet()
    fleet.restart(PACED)
    fleet.sync("a")
    for _ in range(3):
        for name in ("b", "c"):
            fleet.sync(name)
            assert fleet.state(name) == "Queued"
        fleet.sync("a")
        assert fleet.state("a") == "Upgrading"


def test_after_a_restart_an_upgrade_found_under_way_keeps_its_slot() -> None:
    fleet = serving_fleet()
    fleet.restart(PACED)
    fleet.sync("a")
    assert fleet.state("a") == "Upgrading"
    fleet.restart(PACED)  # the operator restarts mid-rollout
    fleet.sync("b")
    assert fleet.state("b") == "Queued"
    assert fleet.operator.slots.holds(("ns", "a"))


def test_a_slot_is_freed_only_once_the_status_saying_so_is_written() -> None:
    """Otherwise the next deployment's Upgrading could land before this one's Current."""
    fleet = serving_fleet()
    fleet.restart(PACED)
    fleet.sync("a")
    fleet.serves("a")
    fleet.cluster.fail["patch_llmdeployment_status"] = [KubeError(500, "etcd timeout")]
    assert fleet.sync("a") is False  # not written: retried
    fleet.sync("b")
    assert fleet.state("b") == "Queued"
    fleet.sync("a")
    assert fleet.state("a") == "Current"
    fleet.sync("b")
    assert fleet.state("b") == "Upgrading"


def test_an_annotation_change_alone_is_reconciled_not_skipped_as_an_echo() -> None:
    cluster = MemoryCluster()
    body = {
        "apiVersion": "kubellm.io/v1alpha1",
        "kind": "LLMDeployment",
        "metadata": {"name": "m", "namespace": "ns", "uid": "u", "generation": 1},
        "spec": SPEC,
    }
    cluster.llmdeployments[("ns", "m")] = body
    run = Reconciler(cluster, OperatorConfig(status_interval_s=0), lambda *_: None)
    run(("ns", "m"), None)
    written = copy.deepcopy(cluster.llmdeployments[("ns", "m")])
    assert run.is_echo(("ns", "m"), written)
    written["metadata"]["annotations"] = {ADOPT_ANNOTATION: "latest"}
    assert not run.is_echo(("ns", "m"), written)
    run.remember(("ns", "m"), written)
    run(("ns", "m"), None)  # from the remembered body: the annotation is kept
    assert run.asked[("ns", "m")] == "latest"


def test_rolling_the_operator_back_moves_a_stuck_deployment_back_and_frees_the_fleet() -> None:
    fleet = serving_fleet()
    fleet.restart(PACED)
    fleet.sync("a")  # moving to 0.2.0, and its new cluster never gets Ready
    fleet.sync("b")
    assert fleet.state("b") == "Queued"
    fleet.restart(OLD.model_copy(update={"defaults_rollout": "paced"}))  # helm rollback
    fleet.sync("a")
    assert fleet.image("a") == "kubellm-runtime:0.1.0"  # back, as a rollout of its own
    assert fleet.state("a") == "Upgrading"
    fleet.sync("b")
    assert fleet.state("b") == "Current"  # it never moved
    assert fleet.image("b") == "kubellm-runtime:0.1.0"
    fleet.serves("a")
    fleet.sync("a")
    assert fleet.state("a") == "Current"
    assert fleet.ready("a")
