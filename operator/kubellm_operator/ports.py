"""What the reconcile service needs from the cluster, as a protocol (kube.Kube implements it)."""

from __future__ import annotations

from typing import Any, Protocol


class ClusterPort(Protocol):
    """What the reconcile service needs from the cluster (a fake implements it in unit tests)."""

    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]: ...
    def get_rayservice(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]: ...
    def get_finetunejob(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    def patch_llmdeployment_status(
        self, namespace: str, name: str, status: dict[str, Any]
    ) -> None: ...
