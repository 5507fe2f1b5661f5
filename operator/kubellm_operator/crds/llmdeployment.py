"""The LLMDeployment CRD: its models, names, printer columns and the scale subresource."""

from __future__ import annotations

from kubellm_operator import names
from kubellm_operator.api.llmdeployment import LLMDeploymentSpec, LLMDeploymentStatus
from kubellm_operator.crds.schema import PrinterColumn, ResourceDefinition

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
