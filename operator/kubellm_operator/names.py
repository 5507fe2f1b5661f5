"""Names, labels, annotations and API coordinates, in one place. Child names are stable."""

from __future__ import annotations

import hashlib
from typing import Final

GROUP: Final = "kubellm.io"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"

LLMDEPLOYMENT_KIND: Final = "LLMDeployment"
LLMDEPLOYMENT_PLURAL: Final = "llmdeployments"
FINETUNEJOB_KIND: Final = "FineTuneJob"
FINETUNEJOB_PLURAL: Final = "finetunejobs"

RAY_GROUP: Final = "ray.io"
RAY_VERSION: Final = "v1"
RAY_API_VERSION: Final = f"{RAY_GROUP}/{RAY_VERSION}"
RAYSERVICE_KIND: Final = "RayService"
RAYSERVICE_PLURAL: Final = "rayservices"
RAYCLUSTER_PLURAL: Final = "rayclusters"
RAYJOB_KIND: Final = "RayJob"
RAYJOB_PLURAL: Final = "rayjobs"

# Labels on every child (and on the Ray pods, through the pod templates).
LABEL_NAME: Final = "app.kubernetes.io/name"
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
LABEL_COMPONENT: Final = "app.kubernetes.io/component"
LABEL_LLMDEPLOYMENT: Final = f"{GROUP}/llmdeployment"
LABEL_FINETUNEJOB: Final = f"{GROUP}/finetunejob"
APP_NAME: Final = "kubellm"
MANAGER: Final = "kubellm-operator"  # also the server-side apply field manager

SERVE_PORT: Final = 8000

# KubeRay refuses RayService names longer than this (MaxRayServiceNameLength = 53 - 6).
MAX_RAYSERVICE_NAME: Final = 47
# ... and RayJob names likewise (MaxRayJobNameLength = 53 - 6).
MAX_RAYJOB_NAME: Final = 47
# ServiceAccounts, Roles and RoleBindings: DNS subdomains, but kept to a label's 63 for tools.
MAX_IDENTITY_NAME: Final = 63
_HASH_LEN: Final = 8


def child_name(parent: str, limit: int) -> str:
    """The parent's name when it fits; otherwise a truncated prefix plus a stable hash."""
    if len(parent) <= limit:
        return parent
    digest = hashlib.sha256(parent.encode()).hexdigest()[:_HASH_LEN]
    prefix = parent[: limit - _HASH_LEN - 1].rstrip("-.")
    return f"{prefix}-{digest}"


def rayservice_name(llmdeployment: str) -> str:
    return child_name(llmdeployment, MAX_RAYSERVICE_NAME)


def rayjob_name(finetunejob: str) -> str:
    return child_name(finetunejob, MAX_RAYJOB_NAME)


def trainer_identity_name(finetunejob: str) -> str:
    """The ServiceAccount, Role and RoleBinding a job's trainer writes its status with."""
    return f"{child_name(finetunejob, MAX_IDENTITY_NAME - len('-trainer'))}-trainer"


def child_labels(parent_label: str, parent: str) -> dict[str, str]:
    """The labels on every child (and Ray pod) of ``parent``: ours, and which object it is of
    (``LABEL_LLMDEPLOYMENT`` or ``LABEL_FINETUNEJOB``)."""
    return {LABEL_NAME: APP_NAME, LABEL_MANAGED_BY: MANAGER, parent_label: parent}


def serve_service_name(rayservice: str) -> str:
    """The Service KubeRay creates for a RayService's Serve endpoints."""
    return f"{rayservice}-serve-svc"


def pod_selector(llmdeployment: str) -> str:
    return f"{LABEL_LLMDEPLOYMENT}={llmdeployment}"


def endpoint(rayservice: str, namespace: str, cluster_domain: str) -> str:
    return (
        f"http://{serve_service_name(rayservice)}.{namespace}.svc.{cluster_domain}:{SERVE_PORT}/v1"
    )
