"""The Kubernetes client edge: server-side apply, reads, status patches; errors translated once."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, cast

from kubernetes import client

from kubellm_operator import names
from kubellm_operator.api.refs import ObjectRef
from kubellm_operator.edge.calls import (
    REQUEST_TIMEOUT,
    SERVER_SIDE_APPLY,
    TYPED_APPLY,
    NotFoundError,
    calling,
)
from kubellm_operator.edge.events import EventPoster, event_body
from kubellm_operator.edge.finetunejob import FineTuneJobCalls
from kubellm_operator.edge.llmdeployment import LLMDeploymentCalls
from kubellm_operator.edge.rayhead import RayHead

logger = logging.getLogger(__name__)


@dataclass
class Kube(LLMDeploymentCalls, FineTuneJobCalls):
    """Both kinds' ports over the official client: each kind's calls (``edge/<kind>.py``),
    plus what both use. Server-side apply with one field manager."""

    api: client.ApiClient
    ray_head: RayHead
    events: EventPoster

    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        if manifest["kind"] in TYPED_APPLY:
            return self._apply_typed(manifest)
        group, version = manifest["apiVersion"].split("/")
        plural = {
            names.RAYSERVICE_KIND: names.RAYSERVICE_PLURAL,
            names.RAYJOB_KIND: names.RAYJOB_PLURAL,
        }[manifest["kind"]]
        meta = manifest["metadata"]
        what = f"apply {manifest['kind']} {meta['name']}"
        with calling("apply", what, missing_kind=f"{plural}.{group}/{version}"):
            result = self._custom.patch_namespaced_custom_object(
                group,
                version,
                meta["namespace"],
                plural,
                meta["name"],
                manifest,
                **SERVER_SIDE_APPLY,
            )
        return cast(dict[str, Any], json.loads(cast(Any, result).data))

    def get_llmdeployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._get(names.GROUP, names.VERSION, names.LLMDEPLOYMENT_PLURAL, namespace, name)

    def get_finetunejob(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._get(names.GROUP, names.VERSION, names.FINETUNEJOB_PLURAL, namespace, name)

    def claim_exists(self, namespace: str, name: str) -> bool:
        """Whether a PersistentVolumeClaim exists (checked before a child would mount it)."""
        try:
            with calling("get pvc", f"get PersistentVolumeClaim {name}"):
                client.CoreV1Api(self.api).read_namespaced_persistent_volume_claim(
                    name, namespace, _request_timeout=REQUEST_TIMEOUT
                )
        except NotFoundError:
            return False
        return True

    def post_event(self, ref: ObjectRef, type_: str, reason: str, message: str) -> None:
        """A Kubernetes Event on the object, handed to the poster (a reconcile never waits)."""
        self.events.post(event_body(ref, type_, reason, message))
