"""The CRDs kubellm ships, and `python -m kubellm_operator.crds write|check` to regenerate them."""

from __future__ import annotations

import sys
from pathlib import Path

from kubellm_operator import names, peering_crds
from kubellm_operator.api.finetunejob import FineTuneJobSpec, FineTuneJobStatus
from kubellm_operator.api.llmdeployment import LLMDeploymentSpec, LLMDeploymentStatus
from kubellm_operator.crd import PrinterColumn, ResourceDefinition, render

LLMDEPLOYMENT = ResourceDefinition(
    kind=names.LLMDEPLOYMENT_KIND,
    plural=names.LLMDEPLOYMENT_PLURAL,
    short_names=("llmd",),
    description=(
        "LLMDeployment serves a model with vLLM on a KubeRay RayService, on the GPU node pool "
        "it names, behind an OpenAI-compatible API."
    ),
    spec=LLMDeploymentSpec,
    status=LLMDeploymentStatus,
    scale=True,
    columns=(
        PrinterColumn(
            "Ready", "string", '.status.conditions[?(@.type=="Ready")].status', "Ready condition"
        ),
        PrinterColumn("Model", "string", ".spec.model.uri", "Model source"),
        PrinterColumn("Replicas", "integer", ".spec.replicas", "Desired replicas"),
        PrinterColumn("Available", "integer", ".status.readyReplicas", "Ready replicas"),
        PrinterColumn("Pool", "string", ".spec.placement.nodePool", "GPU node pool"),
        PrinterColumn("Endpoint", "string", ".status.endpoint", "OpenAI API base URL"),
        PrinterColumn(
            "Defaults",
            "string",
            ".status.defaults.state",
            "Operator defaults: Current, or Outdated/Queued/Upgrading (built with earlier ones)",
        ),
        PrinterColumn("Age", "date", ".metadata.creationTimestamp", "Age"),
    ),
)

FINETUNEJOB = ResourceDefinition(
    kind=names.FINETUNEJOB_KIND,
    plural=names.FINETUNEJOB_PLURAL,
    short_names=("ftj",),
    description=(
        "FineTuneJob fine-tunes a model with LoRA or QLoRA as a KubeRay RayJob, reports its "
        "progress, and can hand the adapter to an LLMDeployment, verified served."
    ),
    spec=FineTuneJobSpec,
    status=FineTuneJobStatus,
    columns=(
        PrinterColumn("Phase", "string", ".status.phase", "Pending, Running, Suspended, ..."),
        PrinterColumn("Model", "string", ".spec.baseModel.uri", "Base model"),
        PrinterColumn("Progress", "integer", ".status.progress.percent", "Percent of steps done"),
        PrinterColumn("Loss", "number", ".status.progress.loss", "Latest training loss"),
        PrinterColumn("ETA", "string", ".status.progress.eta", "Time left at the current pace"),
        PrinterColumn("Age", "date", ".metadata.creationTimestamp", "Age"),
    ),
)

RESOURCES = (LLMDEPLOYMENT, FINETUNEJOB)
REPO_ROOT = Path(__file__).resolve().parents[2]
TARGETS = (REPO_ROOT / "crds", REPO_ROOT / "charts" / "kubellm" / "crds")


def rendered() -> dict[str, str]:
    """File name -> content of every generated CRD (kubellm's kinds and Kopf's peering)."""
    own = {f"{names.GROUP}_{r.plural}.yaml": render(r) for r in RESOURCES}
    return own | peering_crds.rendered()


def stale() -> list[Path]:
    """Checked-in CRD files that differ from what the models generate."""
    files = rendered()
    return [
        target / name
        for target in TARGETS
        for name, text in files.items()
        if not (target / name).is_file() or (target / name).read_text() != text
    ]


def write() -> None:
    for target in TARGETS:
        target.mkdir(parents=True, exist_ok=True)
        for name, text in rendered().items():
            (target / name).write_text(text)


def main(argv: list[str]) -> int:
    if argv[1:] == ["write"]:
        write()
        return 0
    if argv[1:] == ["check"]:
        out_of_date = stale()
        for path in out_of_date:
            print(f"stale: {path} (run: python -m kubellm_operator.crds write)")
        return 1 if out_of_date else 0
    print("usage: python -m kubellm_operator.crds write|check")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
