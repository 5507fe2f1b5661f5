"""The client edge's calls for FineTuneJobs: their RayJobs, the trainer's identity (typed
kinds, server-side applied), their status, and the hand-offs listed without the watch."""

from __future__ import annotations

import json
from typing import Any, cast

from kubellm_operator import names
from kubellm_operator.edge.calls import (
    REQUEST_TIMEOUT,
    SERVER_SIDE_APPLY,
    TYPED_APPLY,
    TYPED_DELETE,
    CustomCalls,
    NotFoundError,
    calling,
)
from kubellm_operator.service.handoffs import HandOff, HandOffIndex


class FineTuneJobCalls(CustomCalls):
    """Mixed into Kube: what the FineTuneJob reconcile needs beyond LLMDeployment's calls."""

    def _apply_typed(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply of a ServiceAccount, Role or RoleBinding (the trainer's identity)."""
        api_class, method = TYPED_APPLY[manifest["kind"]]
        meta = manifest["metadata"]
        what = f"apply {manifest['kind']} {meta['name']}"
        with calling("apply", what, missing_kind=manifest["kind"]):
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
            with calling("delete", f"delete RayJob {name}"):
                self._custom.delete_namespaced_custom_object(
                    names.RAY_GROUP,
                    names.RAY_VERSION,
                    namespace,
                    names.RAYJOB_PLURAL,
                    name,
                    propagation_policy="Background",
                    _request_timeout=REQUEST_TIMEOUT,
                )
        except NotFoundError:
            return  # gone already

    def delete_trainer_identity(self, namespace: str, job: str) -> None:
        """The RoleBinding, Role and ServiceAccount of a finished job's trainer (gone is fine)."""
        name = names.trainer_identity_name(job)
        for kind in ("RoleBinding", "Role", "ServiceAccount"):
            api_class, method = TYPED_DELETE[kind]
            try:
                with calling("delete", f"delete {kind} {name}"):
                    getattr(api_class(self.api), method)(
                        name, namespace, _request_timeout=REQUEST_TIMEOUT
                    )
            except NotFoundError:
                continue

    def patch_finetunejob_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self._patch_status(names.FINETUNEJOB_PLURAL, namespace, name, status)

    def list_finetunejobs(self, namespace: str) -> list[dict[str, Any]]:
        with calling("list finetunejobs", "list finetunejobs"):
            found: Any = self._custom.list_namespaced_custom_object(
                names.GROUP,
                names.VERSION,
                namespace,
                names.FINETUNEJOB_PLURAL,
                _request_timeout=REQUEST_TIMEOUT,
            )
        return list(found.get("items", []))

    def list_handoffs(self, namespace: str, name: str) -> tuple[HandOff, ...]:
        """Without the watch's index: from the namespace's FineTuneJobs, listed."""
        index = HandOffIndex()
        for body in self.list_finetunejobs(namespace):
            index.job_changed(body, deleted=False)
        return index.for_deployment(namespace, name)
