"""Repository invariants: package layout and pinned versions agree with the Go modules."""

from __future__ import annotations

import re

from kubellm_dev import versions
from kubellm_dev.paths import REPO_ROOT


def test_operator_folder_is_not_a_package_shadowing_the_stdlib() -> None:
    assert not (REPO_ROOT / "operator" / "__init__.py").exists()
    assert not (REPO_ROOT / "runtime" / "__init__.py").exists()


OPERATOR = REPO_ROOT / "operator" / "kubellm_operator"
KINDS = ("llmdeployment", "finetunejob")
KIND_STAGES = ("api", "crds", "status", "service", "controller", "edge")
CROSS_CUTTING = {
    "__init__",
    "__main__",
    "config",
    "names",
    "metrics",
    "errors",
    "memory",
    "handlers",
}


def test_kind_k_at_stage_s_is_s_slash_k() -> None:
    """The operator's one layout rule (README "Where does X live"): each stage holds a module
    per kind, named after the kind, and only cross-cutting modules stay at the top."""
    for stage in KIND_STAGES:
        for kind in KINDS:
            assert (OPERATOR / stage / f"{kind}.py").is_file(), f"{stage}/{kind}.py is missing"
    assert {p.stem for p in OPERATOR.glob("*.py")} == CROSS_CUTTING


def test_no_operator_module_is_named_with_a_kind_prefix() -> None:
    prefixes = ("job_", "ftj_", "llmd_", *(f"{kind}_" for kind in KINDS))
    prefixed = [
        str(p.relative_to(OPERATOR)) for p in OPERATOR.rglob("*.py") if p.stem.startswith(prefixes)
    ]
    assert prefixed == []


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
