"""Repository invariants: package layout and pinned versions agree with the Go modules."""

from __future__ import annotations

import re

from kubellm_dev import versions
from kubellm_dev.paths import REPO_ROOT


def test_operator_folder_is_not_a_package_shadowing_the_stdlib() -> None:
    assert not (REPO_ROOT / "operator" / "__init__.py").exists()
    assert not (REPO_ROOT / "runtime" / "__init__.py").exists()


def _required(go_mod: str, module: str) -> str:
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(module)} (v\S+)", go_mod, re.MULTILINE)
    assert match, f"{module} not required in go.mod"
    return match[1]


def test_the_controlplane_module_pins_the_versions_the_harness_reports() -> None:
    go_mod = (REPO_ROOT / "dev" / "controlplane" / "go.mod").read_text()
    assert _required(go_mod, "k8s.io/kubernetes") == versions.KUBERNETES
    assert _required(go_mod, "go.etcd.io/etcd/server/v3") == versions.ETCD
    staging = re.findall(
        r"^\s*(?:replace\s+)?(k8s\.io/\S+) => k8s\.io/\S+ (v\S+)$", go_mod, re.MULTILINE
    )
    assert len(staging) >= 33
    assert {v for _, v in staging} == {"v0." + versions.KUBERNETES.removeprefix("v1.")}


def test_the_helm_module_pins_the_version_the_harness_reports() -> None:
    go_mod = (REPO_ROOT / "dev" / "helm" / "go.mod").read_text()
    assert _required(go_mod, "helm.sh/helm/v4") == versions.HELM
    assert "tool helm.sh/helm/v4/cmd/helm" in go_mod


def test_the_kuberay_module_pins_the_version_the_harness_reports() -> None:
    go_mod = (REPO_ROOT / "dev" / "kuberay" / "go.mod").read_text()
    assert _required(go_mod, "github.com/ray-project/kuberay/ray-operator") == versions.KUBERAY
