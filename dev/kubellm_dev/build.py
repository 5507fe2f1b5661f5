"""Builds the cluster's Go binaries from the module proxy once, cached by pinned version."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kubellm_dev import versions
from kubellm_dev.errors import ComponentError, HarnessError
from kubellm_dev.kwok import KWOK_STAGE_FILES
from kubellm_dev.paths import Paths


@dataclass(frozen=True)
class Binaries:
    """Paths of everything the local cluster runs."""

    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    kwok: Path
    kwok_stages: Path
    ray_operator: Path
    kstatus: Path
    helm: Path


def go_env(paths: Paths) -> dict[str, str]:
    return {
        **os.environ,
        "GOTOOLCHAIN": "local",  # a too-new go line must fail, not download a toolchain
        "CGO_ENABLED": "0",
        "GOFLAGS": "-mod=readonly -buildvcs=false",
        "GOMODCACHE": str(paths.gomodcache),
        "GOCACHE": str(paths.gocache),
    }


def check_go() -> str:
    go = shutil.which("go")
    if go is None:
        raise ComponentError("go toolchain", "`go` not found on PATH; install Go >= 1.26")
    out = subprocess.run([go, "version"], capture_output=True, text=True, check=False).stdout
    match = re.search(r"go(\d+)\.(\d+)", out)
    if match is None or (int(match[1]), int(match[2])) < versions.GO_MIN:
        want = ".".join(map(str, versions.GO_MIN))
        raise ComponentError("go toolchain", f"need Go >= {want}, found: {out.strip()}")
    return go


def _module_key(module: Path) -> str:
    """A wrapper module's identity: its go.mod, go.sum and any Go source of its own."""
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum"):
        digest.update((module / name).read_bytes())
    for source in sorted(module.glob("*.go")):
        digest.update(source.read_bytes())
    return digest.hexdigest()[:12]


def _ldflags() -> str:
    ver = versions.KUBERNETES
    minor = ver.split(".")[1]
    pairs = {
        "k8s.io/component-base/version.gitMajor": "1",
        "k8s.io/component-base/version.gitMinor": minor,
        "k8s.io/component-base/version.gitVersion": ver,
        "k8s.io/component-base/version.gitTreeState": "clean",
        "k8s.io/client-go/pkg/version.gitMajor": "1",
        "k8s.io/client-go/pkg/version.gitMinor": minor,
        "k8s.io/client-go/pkg/version.gitVersion": ver,
    }
    return "-s -w " + " ".join(f"-X {k}={v}" for k, v in pairs.items())


def _run(component: str, argv: list[str], log: Path, cwd: Path | None, env: dict[str, str]) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(argv)}\n".encode())
        out.flush()
        result = subprocess.run(
            argv, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env, check=False
        )
    if result.returncode != 0:
        raise ComponentError(component, f"build failed (exit {result.returncode})", log)


def _build_into(target: Path, build: Callable[[Path], None]) -> Path:
    """Build into a scratch dir and rename it into place, so a killed build never looks done."""
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        build(scratch)
        scratch.rename(target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def build_controlplane(paths: Paths, go: str, target: Path) -> Path:
    log = paths.logs / "build-controlplane.log"
    env = go_env(paths)

    def build(out: Path) -> None:
        pkgs = [
            "k8s.io/kubernetes/cmd/kube-apiserver",
            "k8s.io/kubernetes/cmd/kube-controller-manager",
            "k8s.io/kubernetes/cmd/kube-scheduler",
            "go.etcd.io/etcd/server/v3",
        ]
        argv = [go, "build", "-trimpath", "-ldflags", _ldflags(), "-o", f"{out}/", *pkgs]
        _run("kubernetes control plane", argv, log, paths.controlplane_module, env)
        # `go build` names the etcd main package after its path element before /v3.
        (out / "server").rename(out / "etcd")

    return _build_into(target, build)


def go_install(
    paths: Paths, go: str, *, component: str, package: str, version: str, target: Path
) -> Path:
    log = paths.logs / f"build-{component}.log"
    env = go_env(paths)

    def build(out: Path) -> None:
        argv = [go, "install", "-trimpath", "-ldflags", "-s -w", f"{package}@{version}"]
        _run(component, argv, log, None, {**env, "GOBIN": str(out), "GOFLAGS": "-buildvcs=false"})

    return _build_into(target, build)


def _go_build(
    paths: Paths,
    go: str,
    target: Path,
    *,
    component: str,
    module: Path,
    package: str,
    output: str = "",
    ldflags: str = "-s -w",
) -> Path:
    """``go build`` of ``package`` inside a wrapper ``module`` into ``target`` (cached)."""
    log = paths.logs / f"build-{component.split(maxsplit=1)[0]}.log"

    def build(out: Path) -> None:
        argv = [go, "build", "-trimpath", "-ldflags", ldflags, "-o", f"{out}/{output}", package]
        _run(component, argv, log, module, go_env(paths))

    return _build_into(target, build)


def build_kuberay(paths: Paths, go: str, target: Path) -> Path:
    return _go_build(
        paths,
        go,
        target,
        component="kuberay ray-operator",
        module=paths.kuberay_module,
        package=versions.KUBERAY_MODULE,
    )


def build_kstatus(paths: Paths, go: str, target: Path) -> Path:
    """The kstatus checker (dev/kstatus): what GitOps tools compute from an object's status."""
    return _go_build(
        paths,
        go,
        target,
        component="kstatus checker",
        module=paths.kstatus_module,
        package=".",
        output="kstatus",
    )


def build_helm(paths: Paths, go: str, target: Path) -> Path:
    """The Helm CLI (dev/helm's tool), for the chart's lint, template and install tests."""
    return _go_build(
        paths,
        go,
        target,
        component="helm",
        module=paths.helm_module,
        package="helm.sh/helm/v4/cmd/helm",
        output="helm",
        ldflags=f"-s -w -X helm.sh/helm/v4/internal/version.version={versions.HELM}",
    )


def download_kuberay_crds(paths: Paths, go: str) -> Path:
    """KubeRay's CRDs of the pinned version: part of the module the ray-operator builds from."""
    crds = paths.kuberay_crds
    if not crds.is_dir():
        argv = [go, "mod", "download", versions.KUBERAY_MODULE]
        log = paths.logs / "build-kuberay.log"
        _run("kuberay CRDs", argv, log, paths.kuberay_module, go_env(paths))
    if not crds.is_dir():
        raise ComponentError("kuberay CRDs", f"{crds} missing after downloading the module")
    return crds


def write_kwok_stages(paths: Paths, stages: Path) -> Path:
    """kwok v0.8.0 ships no built-in stages: gather the upstream stage files from its module."""
    if stages.is_file():
        return stages
    module = paths.gomodcache / f"sigs.k8s.io/kwok@{versions.KWOK}" / "kustomize" / "stage"
    docs = []
    for rel in KWOK_STAGE_FILES:
        source = module / rel
        if not source.is_file():
            raise ComponentError("kwok", f"stage file {source} missing from the module cache")
        docs.append(source.read_text().strip())
    tmp = stages.with_suffix(".tmp")
    tmp.write_text("\n---\n".join(docs) + "\n")
    tmp.rename(stages)
    return stages


def layout(paths: Paths) -> Binaries:
    """Where the binaries of the pinned versions live (built or not)."""
    controlplane = (
        paths.bin / f"controlplane-{versions.KUBERNETES}-{_module_key(paths.controlplane_module)}"
    )
    kwok = paths.bin / f"kwok-{versions.KWOK}"
    kuberay = paths.bin / f"kuberay-{versions.KUBERAY}-{_module_key(paths.kuberay_module)}"
    kstatus = paths.bin / f"kstatus-{_module_key(paths.kstatus_module)}"
    helm = paths.bin / f"helm-{versions.HELM}-{_module_key(paths.helm_module)}"
    return Binaries(
        etcd=controlplane / "etcd",
        kube_apiserver=controlplane / "kube-apiserver",
        kube_controller_manager=controlplane / "kube-controller-manager",
        kube_scheduler=controlplane / "kube-scheduler",
        kwok=kwok / "kwok",
        kwok_stages=kwok / "stages.yaml",
        ray_operator=kuberay / "ray-operator",
        kstatus=kstatus / "kstatus",
        helm=helm / "helm",
    )


def build_all(paths: Paths) -> Binaries:
    """Build whatever is missing; a no-op when every pinned binary is already cached."""
    go = check_go()
    binaries = layout(paths)
    build_controlplane(paths, go, binaries.etcd.parent)
    go_install(
        paths,
        go,
        component="kwok",
        package="sigs.k8s.io/kwok/cmd/kwok",
        version=versions.KWOK,
        target=binaries.kwok.parent,
    )
    build_kuberay(paths, go, binaries.ray_operator.parent)
    download_kuberay_crds(paths, go)
    build_kstatus(paths, go, binaries.kstatus.parent)
    build_helm(paths, go, binaries.helm.parent)
    write_kwok_stages(paths, binaries.kwok_stages)
    return binaries


def installed(paths: Paths) -> Binaries:
    """The binaries of an earlier build, without building; a clear error when absent."""
    binaries = layout(paths)
    for name, path in vars(binaries).items():
        if not Path(path).is_file():
            raise HarnessError(
                f"{name} not built ({path} missing): run `scripts/install.sh` "
                "or `python -m kubellm_dev build` first (needs network for the Go module proxy)"
            )
    if not paths.kuberay_crds.is_dir():
        raise HarnessError(
            f"KubeRay CRDs missing ({paths.kuberay_crds}): run `python -m kubellm_dev build`"
        )
    return binaries
