"""The FineTuneJob CRD: its models, names and printer columns."""

from __future__ import annotations

from kubellm_operator import names
from kubellm_operator.api.finetunejob import FineTuneJobSpec, FineTuneJobStatus
from kubellm_operator.crds.schema import PrinterColumn, ResourceDefinition

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
