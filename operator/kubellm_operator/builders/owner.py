"""The parent object of built children: names them and owns them (garbage collection)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubellm_operator import names


@dataclass(frozen=True)
class Owner:
    """The parent object, as a builder needs it for names and the owner reference."""

    name: str
    namespace: str
    uid: str
    kind: str


def owner_reference(owner: Owner) -> dict[str, Any]:
    return {
        "apiVersion": names.API_VERSION,
        "kind": owner.kind,
        "name": owner.name,
        "uid": owner.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }
