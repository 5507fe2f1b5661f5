"""API types shared by LLMDeployment and FineTuneJob: placement, secrets, env, conditions."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from kubellm_operator.api.base import ApiModel, Rule

# RFC 1123 label: names of Kubernetes objects we reference (Secrets, PriorityClasses, ...).
DnsLabel = Annotated[
    str, StringConstraints(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
]
DnsSubdomain = Annotated[
    str,
    StringConstraints(
        min_length=1,
        max_length=253,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
    ),
]
# A Ray release (the RayService's and RayJob's rayVersion).
RayVersion = Annotated[str, StringConstraints(pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$")]
# Names clients pass as `model`: adapter and served names (no slashes, no spaces).
ServedName = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
]
# A Kubernetes resource quantity such as "8", "500m", "64Gi".
Quantity = Annotated[
    str, StringConstraints(pattern=r"^([0-9]+(\.[0-9]+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
]


class SecretRef(ApiModel):
    """A Secret in the same namespace whose keys become environment variables (envFrom)."""

    name: DnsSubdomain
    """Name of the Secret (e.g. with HF_TOKEN or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)."""


class SecretKeyRef(ApiModel):
    """One key of a Secret in the same namespace."""

    name: DnsSubdomain
    """Name of the Secret."""
    key: Annotated[
        str, StringConstraints(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")
    ]
    """Key within the Secret."""


class EnvVar(ApiModel):
    """An environment variable for the Ray containers (as in a Pod spec)."""

    name: Annotated[str, StringConstraints(min_length=1, pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")]
    """Variable name."""
    value: str | None = None
    """Literal value. Never put secrets here: use valueFrom.secretKeyRef."""
    value_from: dict[str, Any] | None = None
    """Source for the value (secretKeyRef, configMapKeyRef, fieldRef), as in a Pod spec."""

    rules = (
        Rule(
            cel="!(has(self.value) && has(self.valueFrom))",
            message="set either value or valueFrom, not both",
            check=lambda e: not (e.value is not None and e.value_from is not None),
        ),
    )


class Toleration(ApiModel):
    """A Pod toleration (as in a Pod spec)."""

    key: str | None = None
    """Taint key; empty with operator Exists tolerates everything."""
    operator: Literal["Exists", "Equal"] = "Equal"
    """Exists or Equal."""
    value: str | None = None
    """Taint value (with operator Equal)."""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    """Taint effect to match; empty matches all effects."""
    toleration_seconds: int | None = Field(default=None, ge=0)
    """How long a NoExecute taint is tolerated."""


class Placement(ApiModel):
    """Where the GPU replicas run. The NVIDIA GPU taint is tolerated by default."""

    node_pool: DnsLabel | None = None
    """Node pool to run GPU workers on; mapped to the operator's node-pool label (nodeSelector)."""
    node_selector: dict[str, str] = Field(default_factory=dict)
    """Extra node labels GPU workers require."""
    tolerations: list[Toleration] = Field(default_factory=list)
    """Extra tolerations for GPU workers (added to the default GPU toleration)."""
    affinity: dict[str, Any] | None = None
    """Pod affinity for GPU workers, as in a Pod spec."""
    priority_class_name: DnsSubdomain | None = None
    """PriorityClass for all Ray pods of this object."""


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(ApiModel):
    """A standard Kubernetes condition."""

    type: str
    """Condition type, e.g. Ready."""
    status: ConditionStatus
    """True, False or Unknown."""
    reason: str
    """CamelCase reason a program can match."""
    message: str = ""
    """What a human should know or do."""
    observed_generation: int | None = None
    """The .metadata.generation the condition was computed for."""
    last_transition_time: str | None = None
    """When status last changed (RFC 3339)."""
