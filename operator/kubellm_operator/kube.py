"""The Kubernetes client edge: server-side apply, reads, status patches; errors translated once."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any, cast

from kubernetes import client

from kubellm_operator import names
from kubellm_operator.children import ServedModels
from kubellm_operator.errors import KubeError
from kubellm_operator.kube_calls import (
    REQUEST_TIMEOUT,
    SERVER_SIDE_APPLY,
    TYPED_APPLY,
    NotFoundError,
    calling,
)
from kubellm_operator.kube_jobs import JobCalls
from kubellm_operator.rayhead import RayHead
from kubellm_operator.refs import ParentRef

logger = logging.getLogger(__name__)


@dataclass
class Kube(JobCalls):
    """ClusterPort over the official client. Server-side apply with one field manager."""

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

    def get_rayservice(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._get(
            names.RAY_GROUP, names.RAY_VERSION, names.RAYSERVICE_PLURAL, namespace, name
        )

    def get_raycluster(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._get(
            names.RAY_GROUP, names.RAY_VERSION, names.RAYCLUSTER_PLURAL, namespace, name
        )

    def get_llmdeployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._get(names.GROUP, names.VERSION, names.LLMDEPLOYMENT_PLURAL, namespace, name)

    def get_finetunejob(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._get(names.GROUP, names.VERSION, names.FINETUNEJOB_PLURAL, namespace, name)

    def list_llmdeployments(self, namespaces: tuple[str, ...]) -> list[dict[str, Any]]:
        """Every LLMDeployment in ``namespaces`` (empty: all namespaces)."""
        resource = (names.GROUP, names.VERSION, names.LLMDEPLOYMENT_PLURAL)
        found: list[dict[str, Any]] = []
        with calling("list llmdeployments", "list llmdeployments"):
            if not namespaces:
                listed: Any = self._custom.list_cluster_custom_object(
                    *resource, _request_timeout=REQUEST_TIMEOUT
                )
                return list(listed.get("items", []))
            for namespace in namespaces:
                listed = self._custom.list_namespaced_custom_object(
                    resource[0],
                    resource[1],
                    namespace,
                    resource[2],
                    _request_timeout=REQUEST_TIMEOUT,
                )
                found += listed.get("items", [])
        return found

    def list_pending_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        """The Pending pods among those selected: the only ones that can be unschedulable (the
        API server filters them, so a large healthy deployment costs a small answer)."""
        with calling("list pods", "list pods"):
            response = client.CoreV1Api(self.api).list_namespaced_pod(
                namespace,
                label_selector=selector,
                field_selector="status.phase=Pending",
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT,
            )
        # _preload_content=False: the raw response, decoded once here as plain camelCase dicts.
        items: list[dict[str, Any]] = json.loads(cast(Any, response).data)["items"]
        return items

    def serve_details(self, namespace: str, cluster: str) -> dict[str, Any] | None:
        return self.ray_head.serve_details(namespace, cluster)

    def served_models(self, namespace: str, rayservice: str, api_key: str | None) -> ServedModels:
        return self.ray_head.served_models(namespace, rayservice, api_key)

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

    def read_secret_key(self, namespace: str, name: str, key: str) -> str | None:
        """One key of a Secret (the API key the operator's serve probe sends), or None when
        the Secret or the key does not exist."""
        try:
            with calling("get secret", f"get Secret {name}"):
                secret = client.CoreV1Api(self.api).read_namespaced_secret(
                    name, namespace, _request_timeout=REQUEST_TIMEOUT
                )
        except NotFoundError:
            return None
        encoded = (secret.data or {}).get(key)
        try:
            return base64.b64decode(encoded).decode().strip() if encoded else None
        except (binascii.Error, UnicodeDecodeError):
            return None

    def patch_llmdeployment_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self._merge_patch(
            (names.GROUP, names.VERSION, names.LLMDEPLOYMENT_PLURAL),
            namespace,
            name,
            status,
            status=True,
        )

    def post_event(self, ref: ParentRef, type_: str, reason: str, message: str) -> None:
        """A Kubernetes Event on the object, handed to the poster (a reconcile never waits)."""
        self.events.post(event_body(ref, type_, reason, message))


def event_body(ref: ParentRef, type_: str, reason: str, message: str) -> dict[str, Any]:
    """The Event about ``ref``: its involvedObject names the object's own kind and uid, so
    `kubectl describe` of that object lists it."""
    now = dt.datetime.now(dt.UTC)
    return {
        "metadata": {"generateName": f"{ref.name}.", "namespace": ref.namespace},
        "involvedObject": ref.involved,
        "type": type_,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": names.MANAGER},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }


class EventPoster:
    """Posts Events from one background thread, through a bounded queue: Events are best
    effort (a lost one loses no state), so a full queue drops the new Event with a log line."""

    def __init__(self, api: client.ApiClient, capacity: int = 1000) -> None:
        self._api = api
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=capacity)
        threading.Thread(target=self._run, name="kubellm-events", daemon=True).start()

    def post(self, event: dict[str, Any]) -> None:
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            logger.warning("event %s dropped: too many events waiting", event["reason"])

    def _run(self) -> None:
        core = client.CoreV1Api(self._api)
        while True:
            event = self._queue.get()
            namespace, reason = event["metadata"]["namespace"], event["reason"]
            try:
                with calling("post event", f"post event {reason}"):
                    core.create_namespaced_event(namespace, event, _request_timeout=REQUEST_TIMEOUT)
            except (KubeError, NotFoundError) as exc:
                logger.warning("event not posted: %s", exc)
