"""The Kubernetes client edge: server-side apply, reads, status patches; errors translated once."""

from __future__ import annotations

import datetime as dt
import json
import logging
import queue
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from kubellm_operator import metrics, names
from kubellm_operator.errors import KubeError
from kubellm_operator.rayhead import RayHead

logger = logging.getLogger(__name__)

NOT_FOUND = 404
# (connect, read) seconds: an API server that stops answering fails the call, which is then
# retried, instead of holding a worker forever.
REQUEST_TIMEOUT = (5, 30)


SERVER_SIDE_APPLY: dict[str, Any] = {
    "field_manager": names.MANAGER,
    "force": True,
    "_content_type": "application/apply-patch+yaml",
    "_request_timeout": REQUEST_TIMEOUT,
    # The raw response: the generated client decodes only 200 for a patch and returns None
    # for the 201 of an apply that created the object.
    "_preload_content": False,
}
# Kinds applied through the typed clients: (API class, its namespaced patch method).
TYPED_APPLY: dict[str, tuple[Any, str]] = {
    "ServiceAccount": (client.CoreV1Api, "patch_namespaced_service_account"),
    "Role": (client.RbacAuthorizationV1Api, "patch_namespaced_role"),
    "RoleBinding": (client.RbacAuthorizationV1Api, "patch_namespaced_role_binding"),
}


class _NotFoundError(Exception):
    """A GET found no such object (404): the caller answers None."""


@contextmanager
def _calling(call: str, what: str, *, missing_kind: str | None = None) -> Iterator[None]:
    """Every client call goes through here: API errors and unreachable servers become KubeError.

    ``missing_kind`` names the resource a write needs: a 404 on a write means its kind (a CRD)
    is not served, which somebody has to install.
    """
    started = time.perf_counter()
    try:
        yield
    except ApiException as exc:
        if exc.status == NOT_FOUND and missing_kind is None:
            raise _NotFoundError from exc
        if exc.status == NOT_FOUND:
            message = f"{missing_kind} is not served by this API server: install KubeRay"
            raise KubeError(NOT_FOUND, message) from exc
        try:
            detail = json.loads(exc.body or "{}").get("message") or exc.reason
        except (ValueError, AttributeError):
            detail = exc.reason
        raise KubeError(exc.status or 0, f"{what}: {detail}") from exc
    except (HTTPError, OSError) as exc:
        raise KubeError(0, f"{what}: API server unreachable ({type(exc).__name__})") from exc
    finally:
        metrics.API_CALL_SECONDS.labels(call).observe(time.perf_counter() - started)


@dataclass
class Kube:
    """ClusterPort over the official client. Server-side apply with one field manager."""

    api: client.ApiClient
    ray_head: RayHead
    events: EventPoster

    @property
    def _custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

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
        with _calling("apply", what, missing_kind=f"{plural}.{group}/{version}"):
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

    def _apply_typed(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply of a ServiceAccount, Role or RoleBinding (the trainer's identity)."""
        api_class, method = TYPED_APPLY[manifest["kind"]]
        meta = manifest["metadata"]
        what = f"apply {manifest['kind']} {meta['name']}"
        with _calling("apply", what, missing_kind=manifest["kind"]):
            result = getattr(api_class(self.api), method)(
                meta["name"],
                meta["namespace"],
                manifest,
                **SERVER_SIDE_APPLY,
            )
        return cast(dict[str, Any], json.loads(cast(Any, result).data))

    def get_rayjob(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._get(names.RAY_GROUP, names.RAY_VERSION, names.RAYJOB_PLURAL, namespace, name)

    def patch_rayjob(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        self._merge_patch(
            (names.RAY_GROUP, names.RAY_VERSION, names.RAYJOB_PLURAL), namespace, name, patch
        )

    def delete_rayjob(self, namespace: str, name: str) -> None:
        try:
            with _calling("delete", f"delete RayJob {name}"):
                self._custom.delete_namespaced_custom_object(
                    names.RAY_GROUP,
                    names.RAY_VERSION,
                    namespace,
                    names.RAYJOB_PLURAL,
                    name,
                    propagation_policy="Background",
                    _request_timeout=REQUEST_TIMEOUT,
                )
        except _NotFoundError:
            return  # gone already

    def patch_finetunejob_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self._merge_patch(
            (names.GROUP, names.VERSION, names.FINETUNEJOB_PLURAL),
            namespace,
            name,
            status,
            status=True,
        )

    def _merge_patch(
        self,
        resource: tuple[str, str, str],
        namespace: str,
        name: str,
        patch: dict[str, Any],
        *,
        status: bool = False,
    ) -> None:
        """A JSON merge patch of an object (``status``: of its status subresource); an object
        deleted meanwhile is nothing to write to."""
        group, version, plural = resource
        call = (
            self._custom.patch_namespaced_custom_object_status
            if status
            else self._custom.patch_namespaced_custom_object
        )
        try:
            with _calling("patch status" if status else "patch", f"patch {plural} {name}"):
                call(
                    group,
                    version,
                    namespace,
                    plural,
                    name,
                    {"status": patch} if status else patch,
                    _content_type="application/merge-patch+json",
                    _request_timeout=REQUEST_TIMEOUT,
                )
        except _NotFoundError:
            return

    def _get(
        self, group: str, version: str, plural: str, namespace: str, name: str
    ) -> dict[str, Any] | None:
        try:
            with _calling(f"get {plural}", f"get {plural} {name}"):
                result = self._custom.get_namespaced_custom_object(
                    group, version, namespace, plural, name, _request_timeout=REQUEST_TIMEOUT
                )
        except _NotFoundError:
            return None
        return cast(dict[str, Any], result)

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

    def list_pending_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        """The Pending pods among those selected: the only ones that can be unschedulable (the
        API server filters them, so a large healthy deployment costs a small answer)."""
        with _calling("list pods", "list pods"):
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

    def patch_llmdeployment_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self._merge_patch(
            (names.GROUP, names.VERSION, names.LLMDEPLOYMENT_PLURAL),
            namespace,
            name,
            status,
            status=True,
        )

    def post_event(self, obj: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        """A Kubernetes Event on the object, handed to the poster (a reconcile never waits)."""
        self.events.post(event_body(obj, type_, reason, message))


def event_body(obj: Mapping[str, Any], type_: str, reason: str, message: str) -> dict[str, Any]:
    meta = obj["metadata"]
    now = dt.datetime.now(dt.UTC)
    return {
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": obj.get("apiVersion", names.API_VERSION),
            "kind": obj.get("kind", names.LLMDEPLOYMENT_KIND),
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid"),
        },
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
                with _calling("post event", f"post event {reason}"):
                    core.create_namespaced_event(namespace, event, _request_timeout=REQUEST_TIMEOUT)
            except (KubeError, _NotFoundError) as exc:
                logger.warning("event not posted: %s", exc)
