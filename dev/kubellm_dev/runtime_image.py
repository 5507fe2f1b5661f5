"""Whether the runtime image's requirements resolve together for linux/x86_64 (no image is
built here: there is no container engine).

Dockerfile.runtime installs vLLM's GPU build (its ``ARG VLLM``), then the project's runtime,
training and QLoRA extras with Ray at the pinned version. pip resolves exactly that set for
the image's platform (CPython 3.11, manylinux x86_64) without installing anything, and writes
its report; ``scripts/install.sh`` runs it once per change of the Dockerfile, pyproject.toml or
the pins (it needs PyPI), and ``tests/unit/test_images.py`` reads the report.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from kubellm_dev.paths import Paths

EXTRAS = ("runtime", "train", "qlora")
# The image's base (rayproject/ray, Ubuntu 22.04: glibc 2.35) takes every manylinux tag up to it.
PLATFORMS = (
    *(f"manylinux_2_{minor}_x86_64" for minor in range(35, 4, -1)),
    "manylinux2014_x86_64",
    "manylinux2010_x86_64",
    "manylinux1_x86_64",
    "linux_x86_64",
)


def requirements(repo: Path) -> list[str]:
    """What the Dockerfile installs: vLLM, Ray with its extras, and the project's extras'
    dependencies (the project itself is pure Python)."""
    dockerfile = (repo / "Dockerfile.runtime").read_text()
    vllm = re.search(r"^ARG VLLM=(\S+)$", dockerfile, re.M)
    ray = re.search(r'"(ray\[serve,train\]==[^"]+)"', dockerfile)
    if vllm is None or ray is None:
        raise ValueError("Dockerfile.runtime: ARG VLLM or the ray[serve,train] pin not found")
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    extras = [r for extra in EXTRAS for r in project["optional-dependencies"][extra]]
    return [vllm[1], ray[1], *project["dependencies"], *extras]


def report_path(paths: Paths) -> Path:
    """Where the report for the current Dockerfile, pyproject.toml and pins is kept."""
    digest = hashlib.sha256()
    for name in ("Dockerfile.runtime", "pyproject.toml", "requirements/constraints.txt"):
        digest.update((paths.repo / name).read_bytes())
    return paths.cache / "runtime-image" / f"{digest.hexdigest()[:16]}.json"


def resolve(paths: Paths) -> Path:
    """pip's resolution of the image's requirements for its platform (cached by inputs)."""
    report = report_path(paths)
    if report.is_file():
        return report
    report.parent.mkdir(parents=True, exist_ok=True)
    scratch = report.with_suffix(".tmp")
    platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    argv = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--dry-run",
        "--ignore-installed",
        "--quiet",
        "--only-binary=:all:",
        "--python-version",
        "3.11",
        "--implementation",
        "cp",
        *platforms,
        "--report",
        str(scratch),
        *requirements(paths.repo),
    ]
    subprocess.run(argv, check=True)
    scratch.rename(report)
    return report
