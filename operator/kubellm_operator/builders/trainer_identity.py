"""The identity a FineTuneJob's trainer writes progress with: a ServiceAccount of its own and
a Role that allows get and patch of this one job's status (resourceNames), nothing else: not
another job, not the spec, not a Secret. All three are owned by the job and go with it."""

from __future__ import annotations

from typing import Any

from kubellm_operator import names
from kubellm_operator.api.refs import Owner
from kubellm_operator.builders.owner import owner_reference


def _metadata(owner: Owner) -> dict[str, Any]:
    return {
        "name": names.trainer_identity_name(owner.name),
        "namespace": owner.namespace,
        "labels": names.child_labels(names.LABEL_FINETUNEJOB, owner.name),
        "ownerReferences": [owner_reference(owner)],
    }


def service_account(owner: Owner) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _metadata(owner)}


def role(owner: Owner) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _metadata(owner),
        "rules": [
            {
                "apiGroups": [names.GROUP],
                "resources": [f"{names.FINETUNEJOB_PLURAL}/status"],
                "resourceNames": [owner.name],
                "verbs": ["get", "patch"],
            }
        ],
    }


def role_binding(owner: Owner) -> dict[str, Any]:
    name = names.trainer_identity_name(owner.name)
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _metadata(owner),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": owner.namespace}],
    }


def build_trainer_identity(owner: Owner) -> list[dict[str, Any]]:
    """In the order they are applied: the account, what it may do, the grant."""
    return [service_account(owner), role(owner), role_binding(owner)]
