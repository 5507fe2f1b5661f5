"""The client edge's calls for LLMDeployments: their RayServices and RayClusters, the Ray pods
the scheduler refuses, what the Ray head serves, the API key the probe sends, their status."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, cast

from kubernetes import client

from kubellm_operator import names
from kubellm_operator.edge.calls import REQUEST_TIMEOUT, CustomCalls, NotFoundError, calling
from kubellm_operator.edge.rayhead import RayHead
from kubellm_operator.status.rayhead import ServedModels


class LLMDeploymentCalls(CustomCalls):
    """Mixed into Kube: what the LLMDeployment reconcile needs beyond the shared calls."""

    ray_head: RayHead

    def get_rayservice(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._get(
            names.RAY_GROUP, names.RAY_VERSION, names.RAYSERVICE_PLURAL, namespace, name
        )

    def get_raycluster(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._get(
            names.RAY_GROUP, names.RAY_VERSION, names.RAYCLUSTER_PLURAL, namespace, name
        )

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
        self._patch_status(names.LLMDEPLOYMENT_PLURAL, namespace, name, status)
