"""`manifests/` is the Helm chart rendered with its defaults (generated, checked in).

`kubectl apply -f crds/ -f manifests/` then installs what `helm install kubellm charts/kubellm
--namespace kubellm-system --create-namespace` does. `kubellm-dev manifests write|check`
regenerates it or says whether the checked-in copy is stale.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from kubellm_dev.paths import Paths

NAMESPACE = "kubellm-system"
RELEASE = "kubellm"
FILE = "kubellm.yaml"
HEADER = (
    "# Generated from charts/kubellm with its default values (`kubellm-dev manifests write`);\n"
    "# do not edit. Install: kubectl apply -f crds/ -f manifests/\n"
)


def helm_template(helm: Path, chart: Path, *args: str) -> str:
    """`helm template` of the chart (release kubellm in kubellm-system), or CalledProcessError
    with helm's message."""
    argv = [str(helm), "template", RELEASE, str(chart), "--namespace", NAMESPACE, *args]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def render(paths: Paths, helm: Path) -> str:
    namespace = f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NAMESPACE}\n"
    return f"{HEADER}---\n{namespace}{helm_template(helm, paths.repo / 'charts' / 'kubellm')}"


def target(paths: Paths) -> Path:
    return paths.repo / "manifests" / FILE


def write(paths: Paths, helm: Path) -> Path:
    path = target(paths)
    path.write_text(render(paths, helm))
    return path


def stale(paths: Paths, helm: Path) -> bool:
    path = target(paths)
    return not path.is_file() or path.read_text() != render(paths, helm)
