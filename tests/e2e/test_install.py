"""Installing kubellm as users do, on the local cluster: the Helm chart with the real Helm CLI
(install, an upgrade with the same values that changes nothing, upgrade, rollback, uninstall),
the plain manifests (a second apply changes nothing; the operator they describe, as their
ServiceAccount, serves a deployment), and the operator running the chart's
exact command line as the chart's ServiceAccount (a TokenRequest token, not admin): its RBAC
is enough to reconcile both kinds with peering on, and not broader than that."""

from __future__ import annotations

import json
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from kubellm_dev.operator_proc import OperatorProcess
from kubellm_dev.paths import default_paths
from kubellm_dev.procs import Supervisor
from kubellm_dev.waiting import wait_for

from .chart import (
    CHART,
    CHART_OPERATOR_METRICS,
    REPO,
    account_kubeconfig,
    helm,
    kubectl,
    local_overrides,
    operator_env,
)
from .conftest import E2ECluster
from .test_llmdeployment import READY, provide_claims, small, wait_ready

GROUP, VERSION = "kubellm.io", "v1alpha1"


def versions(cluster: E2ECluster, release: str, namespace: str) -> dict[str, str]:
    """Every object of a release and what a write to it would change: its generation where it
    has one (a Deployment's resourceVersion also moves with its controller's status writes),
    else its resourceVersion."""
    manifest = helm(cluster, "get", "manifest", release, "--namespace", namespace)
    found = json.loads(kubectl(cluster, "get", "-f", "-", "-o", "json", stdin=manifest))
    written: dict[str, str] = {}
    for obj in found["items"]:
        meta = obj["metadata"]
        key = f"{obj['kind']}/{meta.get('namespace', '')}/{meta['name']}"
        written[key] = str(meta.get("generation") or meta["resourceVersion"])
    return written


def test_the_chart_upgrades_without_changes_rolls_back_and_uninstalls(
    cluster: E2ECluster, namespace: str, release: str
) -> None:
    installed = versions(cluster, release, namespace)
    assert f"ClusterRole//{release}-kubellm" in installed
    assert f"Role/{namespace}/{release}-kubellm" in installed
    assert f"KopfPeering/{namespace}/kubellm" in installed

    same = ["--namespace", namespace, "--set", f"watchNamespaces={{{namespace}}}"]
    helm(cluster, "upgrade", release, str(CHART), *same)
    assert versions(cluster, release, namespace) == installed  # nothing written

    changed = ["--set", "operator.workers=2", "--set", "networkPolicy.enabled=true"]
    helm(cluster, "upgrade", release, str(CHART), *same, *changed)
    assert operator_env(cluster, release, namespace)["KUBELLM_WORKERS"] == "2"
    policy = f"NetworkPolicy/{namespace}/{release}-kubellm-ray-pods"
    assert policy in versions(cluster, release, namespace)  # the API server accepts it
    helm(cluster, "rollback", release, "2", "--namespace", namespace)
    assert operator_env(cluster, release, namespace)["KUBELLM_WORKERS"] == "4"
    assert policy not in versions(cluster, release, namespace)
    history = json.loads(helm(cluster, "history", release, "-n", namespace, "-o", "json"))
    assert [h["revision"] for h in history] == [1, 2, 3, 4]

    helm(cluster, "uninstall", release, "--namespace", namespace, "--wait")
    roles = client.RbacAuthorizationV1Api(cluster.api).list_cluster_role().items
    assert f"{release}-kubellm" not in {r.metadata.name for r in roles}
    crds = client.ApiextensionsV1Api(cluster.api).list_custom_resource_definition().items
    assert "llmdeployments.kubellm.io" in {c.metadata.name for c in crds}  # CRDs stay


def test_the_plain_manifests_install_a_working_operator_and_a_second_apply_changes_nothing(
    cluster: E2ECluster, namespace: str, kubellm_operator: OperatorProcess
) -> None:
    """`kubectl apply -f crds/ -f manifests/` as a user runs it, then the operator those
    manifests describe (their command, environment and ServiceAccount) serves a deployment."""
    manifests = str(REPO / "manifests")
    folder = Path(tempfile.mkdtemp(prefix="kubellm-manifests-operator-"))
    operator: OperatorProcess | None = None
    try:
        kubectl(cluster, "apply", "-f", manifests)
        again = kubectl(cluster, "apply", "-f", manifests).strip().splitlines()
        assert again, "nothing applied"
        assert all(line.endswith(" unchanged") for line in again), again
        deployment = client.AppsV1Api(cluster.api).read_namespaced_deployment(
            "kubellm", "kubellm-system"
        )
        (container,) = deployment.spec.template.spec.containers
        assert container.command == ["python", "-m", "kubellm_operator"]
        account = deployment.spec.template.spec.service_account_name
        operator = OperatorProcess(
            kubeconfig=account_kubeconfig(cluster, "kubellm-system", account, folder),
            supervisor=Supervisor(folder / "logs"),
            metrics_port=CHART_OPERATOR_METRICS,
            extra_env={**{e.name: e.value for e in container.env}, **local_overrides(cluster)},
            standalone=False,  # the manifests' command line, peering on
            name="manifests-operator",
        )
        kubellm_operator.kill()  # the session's operator must not reconcile this one
        operator.start()
        cluster.custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, "llmdeployments", small("plain")
        )
        wait_ready(cluster, namespace, "plain")
        logs = "".join(p.read_text() for p in (folder / "logs").glob("*.log"))
        assert "Forbidden" not in logs, logs[-4000:]
        assert "failed unexpectedly" not in logs, logs[-4000:]
    finally:
        if operator is not None:
            operator.supervisor.stop_all()
            if kubellm_operator.managed is None:
                kubellm_operator.start()
        subprocess.run(
            [
                str(default_paths().kubectl),
                f"--kubeconfig={cluster.kubeconfig}",
                "delete",
                "--wait=false",
                "-f",
                manifests,
            ],
            capture_output=True,
            check=False,
        )


def can(cluster: E2ECluster, account: str, *args: str) -> bool:
    argv = [str(default_paths().kubectl), f"--kubeconfig={cluster.kubeconfig}", "auth"]
    result = subprocess.run(
        [*argv, "can-i", *args, f"--as={account}"], capture_output=True, text=True, check=False
    )
    return result.stdout.strip() == "yes"


def finetunejob(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((REPO / "examples" / "finetunejobs" / "tiny-cpu.yaml").read_text())
    doc["metadata"] = {"name": name}
    return dict(doc)


def test_the_operator_reconciles_as_the_charts_account_with_the_charts_command(
    cluster: E2ECluster, namespace: str, release: str, kubellm_operator: OperatorProcess
) -> None:
    account = f"{release}-kubellm"
    subject = f"system:serviceaccount:{namespace}:{account}"
    # Not broader than needed: no wildcard, no Secret listing, nothing outside the namespace.
    assert not can(cluster, subject, "*", "*", "-n", namespace)
    assert not can(cluster, subject, "list", "secrets", "-n", namespace)
    assert can(cluster, subject, "get", "secrets", "-n", namespace)
    assert not can(cluster, subject, "list", "llmdeployments.kubellm.io", "-n", "default")
    assert not can(cluster, subject, "create", "llmdeployments.kubellm.io", "-n", namespace)

    outside = f"o-{uuid.uuid4().hex[:8]}"
    cluster.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=outside)))
    folder = Path(tempfile.mkdtemp(prefix="kubellm-chart-operator-"))
    env = operator_env(cluster, release, namespace)
    operator = OperatorProcess(
        kubeconfig=account_kubeconfig(cluster, namespace, account, folder),
        supervisor=Supervisor(folder / "logs"),
        metrics_port=CHART_OPERATOR_METRICS,
        extra_env={**env, **local_overrides(cluster)},
        standalone=False,  # exactly the chart's command line, peering on
        name="chart-operator",
    )
    kubellm_operator.kill()  # the session's admin operator must not reconcile these
    try:
        custom = cluster.custom
        custom.create_namespaced_custom_object(
            GROUP, VERSION, outside, "llmdeployments", small("elsewhere")
        )
        operator.start()
        custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, "llmdeployments", small("served")
        )
        tuned = finetunejob("tuned")
        provide_claims(cluster, namespace, tuned["spec"])
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "finetunejobs", tuned)
        wait_ready(cluster, namespace, "served")
        job = wait_for(
            lambda: custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, "finetunejobs", "tuned"
            ),
            lambda o: bool((o.get("status") or {}).get("rayJobName")),
            timeout=READY,
            what="FineTuneJob tuned to get its RayJob",
        )
        custom.get_namespaced_custom_object(
            "ray.io", "v1", namespace, "rayjobs", job["status"]["rayJobName"]
        )
        cluster.core.read_namespaced_service_account("tuned-trainer", namespace)
        peering = custom.get_namespaced_custom_object(
            "kopf.dev", "v1", namespace, "kopfpeerings", "kubellm"
        )
        assert peering.get("status"), peering  # the replica registered itself as a peer
        elsewhere = custom.get_namespaced_custom_object(
            GROUP, VERSION, outside, "llmdeployments", "elsewhere"
        )
        assert "status" not in elsewhere  # outside its namespaces: never touched
        logs = "".join(p.read_text() for p in (folder / "logs").glob("*.log"))
        assert "Forbidden" not in logs, logs[-4000:]
        assert "failed unexpectedly" not in logs, logs[-4000:]
    finally:
        operator.supervisor.stop_all()
        kubellm_operator.start()
        cluster.core.delete_namespace(outside)
