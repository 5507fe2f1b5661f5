"""The parent object of built children: names them and owns them (garbage collection)."""

from __future__ import annotations

from typing import Any

from kubellm_operator import names
from kubellm_operator.api.refs import Owner


def owner_reference(owner: Owner) -> dict[str, Any]:
    return {
        "apiVersion": names.API_VERSION,
        "kind": owner.kind,
        "name": owner.name,
        "uid": owner.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }
