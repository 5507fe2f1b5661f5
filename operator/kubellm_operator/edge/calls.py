"""How the Kubernetes client edge calls the API: timeouts, server-side apply options, and
every failure translated once into a KubeError (or NotFoundError, for a read)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from kubellm_operator import metrics, names
from kubellm_operator.errors import KubeError

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
TYPED_DELETE: dict[str, tuple[Any, str]] = {
    "ServiceAccount": (client.CoreV1Api, "delete_namespaced_service_account"),
    "Role": (client.RbacAuthorizationV1Api, "delete_namespaced_role"),
    "RoleBinding": (client.RbacAuthorizationV1Api, "delete_namespaced_role_binding"),
}


class NotFoundError(Exception):
    """A GET found no such object (404): the caller answers None."""


@contextmanager
def calling(call: str, what: str, *, missing_kind: str | None = None) -> Iterator[None]:
    """Every client call goes through here: API errors and unreachable servers become KubeError.

    ``missing_kind`` names the resource a write needs: a 404 on a write means its kind (a CRD)
    is not served, which somebody has to install.
    """
    started = time.perf_counter()
    try:
        yield
    except ApiException as exc:
        if exc.status == NOT_FOUND and missing_kind is None:
            raise NotFoundError from exc
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


class CustomCalls:
    """Reads and merge patches of custom objects, for the client edge's classes."""

    api: client.ApiClient

    @property
    def _custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

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
            with calling("patch status" if status else "patch", f"patch {plural} {name}"):
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
        except NotFoundError:
            return

    def _get(
        self, group: str, version: str, plural: str, namespace: str, name: str
    ) -> dict[str, Any] | None:
        try:
            with calling(f"get {plural}", f"get {plural} {name}"):
                result = self._custom.get_namespaced_custom_object(
                    group, version, namespace, plural, name, _request_timeout=REQUEST_TIMEOUT
                )
        except NotFoundError:
            return None
        return cast(dict[str, Any], result)

    def _patch_status(self, plural: str, namespace: str, name: str, status: dict[str, Any]) -> None:
        """A merge patch of the status of one of kubellm's own objects."""
        self._merge_patch(
            (names.GROUP, names.VERSION, plural), namespace, name, status, status=True
        )
