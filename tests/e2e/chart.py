"""The Helm chart and the operator as the chart runs it, for the install and HA e2e tests."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from kubernetes import client

from kubellm_dev import build
from kubellm_dev.paths import default_paths

if TYPE_CHECKING:
    from .conftest import E2ECluster

REPO = default_paths().repo
CHART = REPO / "charts" / "kubellm"
CHART_OPERATOR_METRICS = 18091  # beside the session operator's


def helm(cluster: E2ECluster, *args: str, check: bool = True) -> str:
    """The real Helm CLI against the cluster; its stdout (with ``check``, it must succeed)."""
    helm_cli = build.installed(default_paths()).helm
    argv = [str(helm_cli), f"--kubeconfig={cluster.kubeconfig}", *args]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert result.returncode == 0 or not check, result.stderr
    return result.stdout


def kubectl(cluster: E2ECluster, *args: str, stdin: str | None = None) -> str:
    argv = [str(default_paths().kubectl), f"--kubeconfig={cluster.kubeconfig}", *args]
    result = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def operator_env(cluster: E2ECluster, release: str, namespace: str) -> dict[str, str]:
    """The environment the chart gives the operator container."""
    manifest = helm(cluster, "get", "manifest", release, "--namespace", namespace)
    (deployment,) = [d for d in yaml.safe_load_all(manifest) if d and d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["python", "-m", "kubellm_operator"]
    return {e["name"]: e["value"] for e in container["env"]}


def account_kubeconfig(
    cluster: E2ECluster, namespace: str, account: str, folder: Path, lifetime_s: int = 3600
) -> Path:
    """A kubeconfig holding only a token of the ServiceAccount (as its pod would get)."""
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=lifetime_s)
    )
    token = cluster.core.create_namespaced_service_account_token(account, namespace, request)
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    server = admin["clusters"][0]["cluster"]
    ca = folder / "ca.crt"
    ca.write_bytes(base64.b64decode(server["certificate-authority-data"]))
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "c", "cluster": {"server": server["server"], "certificate-authority": str(ca)}}
        ],
        "users": [{"name": account, "user": {"token": token.status.token}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": account}}],
        "current-context": "c",
    }
    path = folder / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def local_overrides(cluster: E2ECluster) -> dict[str, str]:
    """What differs out of cluster: loopback listeners and the local Ray bridge."""
    assert cluster.local is not None
    return {
        "KUBELLM_METRICS_HOST": "127.0.0.1",
        "KUBELLM_METRICS_PORT": str(CHART_OPERATOR_METRICS),
        "KUBELLM_HEALTH_HOST": "127.0.0.1",
        "KUBELLM_HEALTH_PORT": "18092",
        "KUBELLM_RAY_DASHBOARD_PROXY": cluster.local.ray_proxy,
        "KUBELLM_RAYJOB_SUBMISSION_MODE": "HTTPMode",
    }
