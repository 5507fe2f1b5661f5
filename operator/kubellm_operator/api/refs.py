"""The object being reconciled, as read from its body (either kind).

Its kind and apiVersion come from the body itself, never from a default: whatever is posted or
built for it (Events, owner references, log context) names the object it is really about.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from kubellm_operator.api.common import Condition

Key = tuple[str, str]
"""(namespace, name) of an object: what work queues, caches and indexes are keyed by."""


def key_of(body: Mapping[str, Any]) -> Key:
    """(namespace, name) of a watched object."""
    meta = body.get("metadata") or {}
    return str(meta.get("namespace", "")), str(meta.get("name", ""))


@dataclass(frozen=True)
class ObjectRef:
    """The object being reconciled (either kind), as read from its body."""

    api_version: str
    kind: str
    name: str
    namespace: str
    uid: str
    generation: int
    spec: Mapping[str, Any]
    status: Mapping[str, Any]
    annotations: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Self:
        meta = body["metadata"]
        return cls(
            api_version=body["apiVersion"],
            kind=body["kind"],
            name=meta["name"],
            namespace=meta["namespace"],
            uid=meta["uid"],
            generation=int(meta.get("generation") or 0),
            spec=body.get("spec") or {},
            status=body.get("status") or {},
            annotations=meta.get("annotations") or {},
        )

    def previous_conditions(self) -> tuple[Condition, ...]:
        """The conditions its status has now (a new stamp keeps their transition times)."""
        return tuple(Condition.model_validate(c) for c in self.status.get("conditions") or [])

    @property
    def owner(self) -> Owner:
        """The object as the owner of the children built for it."""
        return Owner(self.name, self.namespace, self.uid, self.kind)

    @property
    def involved(self) -> dict[str, Any]:
        """The object as an Event's involvedObject (what `kubectl describe` selects on)."""
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "namespace": self.namespace,
            "uid": self.uid,
        }


@dataclass(frozen=True)
class Owner:
    """The parent object, as a builder needs it for names and the owner reference."""

    name: str
    namespace: str
    uid: str
    kind: str
