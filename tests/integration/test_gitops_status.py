"""The status an LLMDeployment reports, read by the tools users wait with.

kstatus (sigs.k8s.io/cli-utils, built from the Go module proxy: what kpt, Config Sync and Flux
health checks compute) and the Argo CD health check the chart ships (run by a real Lua
runtime) must both call each case of the status table what the README says:
ready → Current/Healthy, a rollout → InProgress/Progressing, stalled → Failed/Degraded.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import lupa
import pytest

from kubellm_dev import build
from kubellm_dev.paths import REPO_ROOT, default_paths
from kubellm_operator.status import finetunejob
from kubellm_operator.status.llmdeployment import Observed, derive
from kubellm_operator.status.rayjob import RayJobView
from tests.unit.operator.status.test_finetunejob import PHASES, PUBLISHED
from tests.unit.operator.status.test_finetunejob import observe as job_observed
from tests.unit.operator.status.test_llmdeployment import CASES, Expect

from .conftest import _unavailable

ARGOCD_HEALTH = REPO_ROOT / "charts" / "kubellm" / "files" / "argocd-health-llmdeployment.lua"


def as_object(obs: Observed, generation: int | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "kubellm.io/v1alpha1",
        "kind": "LLMDeployment",
        "metadata": {"name": "m", "namespace": "ns", "generation": generation or obs.generation},
        "status": derive(obs).to_wire(),
    }


def expected(expect: Expect) -> tuple[str, str]:
    if expect.stalled:
        return "Failed", "Degraded"
    if expect.ready == "Serving":
        return "Current", "Healthy"
    return "InProgress", "Progressing"


@pytest.fixture(scope="module")
def kstatus() -> Path:
    binary = build.layout(default_paths()).kstatus
    if not binary.is_file():
        _unavailable(f"{binary} not built: run `python -m kubellm_dev build`")
    return binary


def kstatus_of(binary: Path, obj: dict[str, Any]) -> str:
    out = subprocess.run(
        [str(binary)], input=json.dumps(obj), capture_output=True, text=True, check=True
    )
    return str(json.loads(out.stdout)["status"])


@pytest.fixture(scope="module")
def argocd() -> Any:
    lua = lupa.LuaRuntime(unpack_returned_tuples=True)
    check = lua.eval(f"function(obj)\n{ARGOCD_HEALTH.read_text()}\nend")

    def health(obj: dict[str, Any]) -> str:
        return str(check(lua.table_from(obj, recursive=True))["status"])

    return health


@pytest.mark.parametrize(("obs", "expect"), CASES.values(), ids=CASES.keys())
def test_kstatus_and_argocd_read_each_case_as_documented(
    obs: Observed, expect: Expect, kstatus: Path, argocd: Any
) -> None:
    obj = as_object(obs)
    assert (kstatus_of(kstatus, obj), argocd(obj)) == expected(expect)


def test_a_spec_the_operator_has_not_seen_yet_is_in_progress_for_both(
    kstatus: Path, argocd: Any
) -> None:
    """kubectl apply bumped the generation; the status still describes the previous one."""
    obj = as_object(CASES["serving the current spec"][0], generation=4)
    assert (kstatus_of(kstatus, obj), argocd(obj)) == ("InProgress", "Progressing")


ARGOCD_JOB_HEALTH = ARGOCD_HEALTH.with_name("argocd-health-finetunejob.lua")
PHASES_BY_REASON = {reason: job for job, _, _, _, reason in PHASES}
JOB_HEALTH = {
    "Succeeded": "Healthy",
    "Failed": "Degraded",
    "Suspended": "Suspended",
    "Running": "Progressing",
    "Pending": "Progressing",
}


@pytest.fixture(scope="module")
def argocd_job() -> Any:
    lua = lupa.LuaRuntime(unpack_returned_tuples=True)
    check = lua.eval(f"function(obj)\n{ARGOCD_JOB_HEALTH.read_text()}\nend")

    def health(obj: dict[str, Any]) -> tuple[str, str]:
        answer = check(lua.table_from(obj, recursive=True))
        return str(answer["status"]), str(answer["message"])

    return health


def job_object(status: dict[str, Any], generation: int = 3) -> dict[str, Any]:
    return {
        "apiVersion": "kubellm.io/v1alpha1",
        "kind": "FineTuneJob",
        "metadata": {"name": "sql", "namespace": "ns", "generation": generation},
        "status": status,
    }


@pytest.mark.parametrize(("job", "previous", "spec", "phase", "reason"), PHASES)
def test_argocd_reads_each_finetunejob_phase_as_documented(
    job: RayJobView | None,
    previous: dict[str, Any],
    spec: dict[str, Any],
    phase: str,
    reason: str,
    argocd_job: Any,
) -> None:
    status = finetunejob.derive(job_observed(job, previous, **spec)).to_wire()
    health, message = argocd_job(job_object(status))
    assert health == JOB_HEALTH[phase]
    if phase == "Failed":
        assert message.startswith(f"{reason}: ")


def test_argocd_waits_for_a_new_job_generation_and_for_the_hand_off(argocd_job: Any) -> None:
    done = finetunejob.derive(job_observed(PHASES_BY_REASON["Succeeded"], PUBLISHED)).to_wire()
    assert argocd_job(job_object(done, generation=4))[0] == "Progressing"
    waiting = {
        **done,
        "conditions": [
            *done["conditions"],
            {"type": "Deployed", "status": "False", "reason": "Pending", "message": "loading"},
        ],
    }
    assert argocd_job(job_object(waiting)) == ("Progressing", "trained; hand-off: loading")
    assert argocd_job(job_object({}))[0] == "Progressing"  # not reconciled yet
