"""The e2e tier: a real control plane, kwok GPU pools, KubeRay and the Ray bridge.

By default a fresh local cluster is started for the session (inside the loopback-only
namespace that `make test` provides). With KUBELLM_E2E_KUBECONFIG the tests run against that
cluster instead (a kind cluster, a real GPU cluster); tests that need the bridge then skip.
With KUBELLM_REQUIRE_E2E=1 (set by `make test` and CI) missing prerequisites fail instead of skip.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from kubellm_dev import build, netns
from kubellm_dev.bridge_client import BridgeClient
from kubellm_dev.cluster import LocalCluster
from kubellm_dev.errors import HarnessError
from kubellm_dev.operator_proc import OperatorProcess, install_crds
from kubellm_dev.paths import default_paths
from kubellm_dev.procs import Supervisor
from kubellm_dev.waiting import wait_for

from .chart import CHART, account_kubeconfig, helm

pytestmark = pytest.mark.e2e
# The session operator's identity: the chart installed cluster-wide (its default mode), under
# names of its own (the install tests apply and delete manifests/, whose names are the defaults).
OPERATOR_RELEASE = OPERATOR_NAMESPACE = "kubellm-e2e"
RAY_PLURALS = {"RayCluster": "rayclusters", "RayService": "rayservices", "RayJob": "rayjobs"}


def _unavailable(reason: str) -> None:
    if os.environ.get("KUBELLM_REQUIRE_E2E") == "1":
        pytest.fail(f"e2e prerequisites missing (KUBELLM_REQUIRE_E2E=1): {reason}")
    pytest.skip(reason)


@dataclass
class E2ECluster:
    """What a test gets: API clients, and the local harness when there is one."""

    kubeconfig: Path
    api: client.ApiClient
    local: LocalCluster | None

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    def create_ray(self, namespace: str, manifest: dict[str, Any]) -> dict[str, Any]:
        plural = RAY_PLURALS[manifest["kind"]]
        result: dict[str, Any] = self.custom.create_namespaced_custom_object(
            "ray.io", "v1", namespace, plural, manifest
        )
        return result

    def get_ray(self, namespace: str, kind: str, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.custom.get_namespaced_custom_object(
            "ray.io", "v1", namespace, RAY_PLURALS[kind], name
        )
        return result

    def pods(self, namespace: str, selector: str = "") -> list[client.V1Pod]:
        return list(self.core.list_namespaced_pod(namespace, label_selector=selector).items)

    def events_for(self, namespace: str, name: str) -> list[client.CoreV1Event]:
        return list(
            self.core.list_namespaced_event(
                namespace, field_selector=f"involvedObject.name={name}"
            ).items
        )

    def described_events(self, namespace: str, resource: str, name: str) -> list[str]:
        """The reasons of the Events `kubectl describe <resource> <name>` shows, oldest first:
        kubectl selects them by the object's kind, name, namespace and uid."""
        kubectl = [str(default_paths().kubectl), f"--kubeconfig={self.kubeconfig}"]
        described = subprocess.run(
            [*kubectl, "describe", "-n", namespace, resource, name],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        _, found, table = described.partition("\nEvents:")
        assert found, described
        if table.strip().startswith("<none>"):
            return []
        reasons = []
        for line in table.splitlines()[3:]:  # after the header and its rule
            if not line.startswith(" "):
                break
            reasons.append(line.split()[1])
        return reasons

    @property
    def bridge(self) -> BridgeClient:
        if self.local is None:
            pytest.skip(
                "needs the local cluster's Ray bridge (not available on an existing cluster)"
            )
        return self.local.bridge


@pytest.fixture(scope="session")
def cluster() -> Iterator[E2ECluster]:
    existing = os.environ.get("KUBELLM_E2E_KUBECONFIG")
    if existing:
        api = config.new_client_from_config(config_file=existing)
        yield E2ECluster(kubeconfig=Path(existing), api=api, local=None)
        return
    if not netns.loopback_only():
        _unavailable(
            "the local cluster runs only in a loopback-only network namespace: "
            "run `make test` or `kubellm-dev netns -- pytest ...`"
        )
    paths = default_paths()
    try:
        build.installed(paths)
    except HarnessError as exc:
        _unavailable(str(exc))
    local = LocalCluster(paths, name="pytest")
    try:
        info = local.up()
        print(f"\nlocal cluster up: apiserver ready {info.timings}")
        api = config.new_client_from_config(config_file=info.kubeconfig)
        yield E2ECluster(kubeconfig=Path(info.kubeconfig), api=api, local=local)
    finally:
        local.down()


@pytest.fixture
def namespace(cluster: E2ECluster) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards (its bridge scripting reset)."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    cluster.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    cluster.core.delete_namespace(name)
    if cluster.local is not None:
        cluster.local.bridge.reset(name)
    # Wait until it is gone, so the next test finds the GPUs of this one free again.
    wait_for(
        lambda: [n.metadata.name for n in cluster.core.list_namespace().items],
        lambda names: name not in names,
        timeout=120,
        what=f"namespace {name} to be deleted",
    )


@pytest.fixture
def release(cluster: E2ECluster, namespace: str) -> Iterator[str]:
    """The Helm chart installed in the test's namespace, watching only it (cluster-scoped
    names carry the release name, so the releases of several tests never collide)."""
    name = f"kl-{namespace}"
    watch = f"watchNamespaces={{{namespace}}}"
    helm(cluster, "install", name, str(CHART), "--namespace", namespace, "--set", watch)
    yield name
    helm(cluster, "uninstall", name, "--namespace", namespace, check=False)


@pytest.fixture(scope="module")
def scratch_namespace(cluster: E2ECluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """One namespace for a module's rejection cases, named after the module; deleted after."""
    name = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_").replace("_", "-")
    cluster.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    cluster.core.delete_namespace(name)


@pytest.fixture(scope="session")
def real_ray(cluster: E2ECluster) -> None:
    """A real Ray head behind the bridge (started once per session, on first use)."""
    if cluster.local is None:
        pytest.skip("the real-mode bridge exists only on the local cluster")
    cluster.local.start_real_ray()


@pytest.fixture
def real_namespace(
    cluster: E2ECluster, namespace: str, real_ray: None, kubellm_operator: OperatorProcess
) -> str:
    """A test namespace whose Ray calls the bridge sends to the real Ray head."""
    cluster.bridge.set_mode(namespace, "real")
    return namespace


REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def kubellm_crds(cluster: E2ECluster) -> None:
    """kubellm's CRDs installed from crds/ (what `kubectl apply -f crds/` does)."""
    install_crds(default_paths().kubectl, cluster.kubeconfig, REPO / "crds")


@pytest.fixture(scope="session")
def operator_kubeconfig(cluster: E2ECluster, kubellm_crds: None) -> Iterator[Path]:
    """A token of the chart's ServiceAccount (TokenRequest, as its pod gets one), never admin:
    every e2e test that the session operator serves proves the chart's RBAC is enough."""
    helm(
        cluster,
        *("install", OPERATOR_RELEASE, str(CHART), "--namespace", OPERATOR_NAMESPACE),
        *("--create-namespace", "--set", f"peering.name={OPERATOR_RELEASE}"),
    )
    folder = Path(tempfile.mkdtemp(prefix="kubellm-operator-account-"))
    try:
        yield account_kubeconfig(
            cluster, OPERATOR_NAMESPACE, OPERATOR_RELEASE, folder, lifetime_s=6 * 3600
        )
    finally:
        helm(cluster, "uninstall", OPERATOR_RELEASE, "--namespace", OPERATOR_NAMESPACE, check=False)


@pytest.fixture(scope="session")
def kubellm_operator(cluster: E2ECluster, operator_kubeconfig: Path) -> Iterator[OperatorProcess]:
    """The operator running for the whole session (restartable by tests), as the chart's
    ServiceAccount."""
    log_dir = (cluster.local.log_dir if cluster.local else Path(tempfile.mkdtemp())) / "operator"
    process = OperatorProcess(
        kubeconfig=operator_kubeconfig,
        supervisor=Supervisor(log_dir),
        ray_proxy=cluster.local.ray_proxy if cluster.local else None,
    )
    process.start()
    try:
        yield process
    finally:
        process.supervisor.stop_all()
    # Every failure the operator met must have been an expected one (an API error it turned
    # into a condition and retried), never a bug caught by the work queue's last resort.
    logs = "".join(p.read_text() for p in log_dir.glob("*.log"))
    assert "failed unexpectedly" not in logs, f"operator bug, see {log_dir}"
    # Nothing the operator asked for was refused by RBAC: the chart's rules cover every call.
    # (An API server names the identity only when it refuses it: `User "system:..." cannot`.)
    denied = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_RELEASE}"
    assert denied not in logs, f"the chart's RBAC lacks a rule, see {log_dir}"
