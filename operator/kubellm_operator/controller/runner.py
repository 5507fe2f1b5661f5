"""What the runners of both kinds share: the body a reconcile keeps of its object, the clock,
how an Event is posted, and the log context that names the object."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from kubellm_operator.api.refs import ObjectRef
from kubellm_operator.service.defaults import ADOPT_ANNOTATION

PostEvent = Callable[[ObjectRef, str, str, str], None]
"""(object, type, reason, message): a Kubernetes Event on the object."""


def log_context(ref: ObjectRef) -> dict[str, Any]:
    """Log context naming the object (Kopf's JSON formatter writes it as "object")."""
    return {"k8s_ref": ref.involved}


KEPT_METADATA = ("name", "namespace", "uid", "generation", "creationTimestamp", "deletionTimestamp")
KEPT_ANNOTATIONS = (ADOPT_ANNOTATION,)


def trimmed(body: Mapping[str, Any]) -> dict[str, Any]:
    """What a reconcile reads of its object: without managedFields, labels and annotations,
    which would make up most of the memory kept for each object. Its apiVersion and kind
    stay: the Events and log lines about it name them."""
    meta = body.get("metadata") or {}
    kept = {k: meta[k] for k in KEPT_METADATA if k in meta}
    annotations = meta.get("annotations") or {}
    if asked := {k: annotations[k] for k in KEPT_ANNOTATIONS if k in annotations}:
        kept["annotations"] = asked
    return {
        "apiVersion": body["apiVersion"],
        "kind": body["kind"],
        "metadata": kept,
        "spec": body.get("spec") or {},
        "status": body.get("status") or {},
    }


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
