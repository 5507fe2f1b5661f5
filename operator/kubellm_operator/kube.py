"""The Kubernetes client edge: server-side apply, reads, status patches; errors translated once."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kubellm_operator import names

NOT_FOUND = 404
CONFLICT = 409
TOO_MANY_REQUESTS = 429
SERVER_ERROR = 500
FINETUNEJOB_PLURAL = "finetunejobs"


class KubeError(Exception):
    """An API call failed; ``retryable`` says whether trying again may help."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"Kubernetes API error {status}: {message}")
        self.status = status
        self.retryable = status in {CONFLICT, TOO_MANY_REQUESTS, 0} or status >= SERVER_ERROR


def _translate(exc: ApiException) -> KubeError:
    try:
        message = json.loads(exc.body or "{}").get("message") or exc.reason
    except (ValueError, AttributeError):
        message = exc.reason
    return KubeError(exc.status or 0, str(message))


@dataclass
class Kube:
    """ClusterPort over the official client. Server-side apply with one field manager."""

    api: client.ApiClient

    @property
    def _custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        group, version = manifest["apiVersion"].split("/")
        plural = {names.RAYSERVICE_KIND: names.RAYSERVICE_PLURAL}[manifest["kind"]]
        meta = manifest["metadata"]
        try:
            result = self._custom.patch_namespaced_custom_object(
                group,
                version,
                meta["namespace"],
                plural,
                meta["name"],
                manifest,
                field_manager=names.MANAGER,
                force=True,
                _content_type="application/apply-patch+yaml",
            )
        except ApiException as exc:
            raise _translate(exc) from exc
        return cast(dict[str, Any], result)

    def _get(
        self, group: str, version: str, plural: str, namespace: str, name: str
    ) -> dict[str, Any] | None:
        try:
            result = self._custom.get_namespaced_custom_object(
                group, version, namespace, plural, name
            )
        except ApiException as exc:
            if exc.status == NOT_FOUND:
                return None
            raise _translate(exc) from exc
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
        return self._get(names.GROUP, names.VERSION, FINETUNEJOB_PLURAL, namespace, name)

    def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        try:
            response = client.CoreV1Api(self.api).list_namespaced_pod(
                namespace, label_selector=selector, _preload_content=False
            )
        except ApiException as exc:
            raise _translate(exc) from exc
        # _preload_content=False: the raw response, decoded once here as plain camelCase dicts.
        items: list[dict[str, Any]] = json.loads(cast(Any, response).data)["items"]
        return items

    def patch_llmdeployment_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        try:
            self._custom.patch_namespaced_custom_object_status(
                names.GROUP,
                names.VERSION,
                namespace,
                names.LLMDEPLOYMENT_PLURAL,
                name,
                {"status": status},
                _content_type="application/merge-patch+json",
            )
        except ApiException as exc:
            if exc.status == NOT_FOUND:
                return  # deleted meanwhile: nothing to report on
            raise _translate(exc) from exc
