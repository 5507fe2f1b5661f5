"""What the watches already deliver, kept in memory so a reconcile does not read it again.

RayServices, RayClusters, the Ray pods the scheduler refuses and the FineTuneJobs that hand off
to a deployment arrive as watch events anyway;
a GET of the service and the cluster and a list of pods per reconcile cost most of its time on
a busy API server. The store holds one entry per watched RayService (its body without
managedFields, compressed: about 2 KB), per watched cluster and per refused pod (bounded by the
objects watched), written by the Kopf event handlers on the event loop and read by the
reconcile workers (single dict operations, atomic under the GIL).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubellm_operator import names
from kubellm_operator.api.refs import Key, key_of
from kubellm_operator.controller.packed import pack, unpack
from kubellm_operator.service.handoffs import HandOff, HandOffIndex
from kubellm_operator.service.ports import LLMDeploymentCluster
from kubellm_operator.status.pod import PodView
from kubellm_operator.status.rayhead import ServedModels


@dataclass
class WatchedStore:
    services: dict[Key, tuple[int, bytes]] = field(default_factory=dict)
    """(generation, compressed JSON body) of each RayService."""
    clusters: dict[Key, dict[str, Any]] = field(default_factory=dict)
    refused: dict[Key, dict[str, dict[str, Any]]] = field(default_factory=dict)
    handoffs: HandOffIndex = field(default_factory=HandOffIndex)
    """FineTuneJobs that name a deployment in deployTo."""

    def rayservice_changed(self, body: Mapping[str, Any], deleted: bool) -> None:
        if deleted:
            self.services.pop(key_of(body), None)
        else:
            self.keep_rayservice(body)

    def keep_rayservice(self, body: Mapping[str, Any]) -> None:
        """Keep the newest body seen (a watch event or the answer to an apply). An event of
        an older generation arriving after the apply that made a newer one is ignored, so the
        next reconcile does not take the old spec for drift and apply again."""
        key, meta = key_of(body), dict(body.get("metadata") or {})
        generation = int(meta.get("generation") or 0)
        held = self.services.get(key)
        if held is not None and held[0] > generation:
            return
        meta.pop("managedFields", None)
        self.services[key] = (generation, pack({**body, "metadata": meta}))

    def rayservice(self, key: Key) -> dict[str, Any] | None:
        held = self.services.get(key)
        return None if held is None else unpack(held[1])

    def raycluster_changed(self, body: Mapping[str, Any], deleted: bool) -> None:
        key = key_of(body)
        if deleted:
            self.clusters.pop(key, None)
        else:  # only what status needs: the name and the status
            self.clusters[key] = {"metadata": {"name": key[1]}, "status": body.get("status")}

    def pod_changed(self, parent: Key, body: Mapping[str, Any], deleted: bool) -> bool:
        """Record whether the pod is refused by the scheduler; True when that changed."""
        pod = dict(body)
        name = str((pod.get("metadata") or {}).get("name", ""))
        refused = self.refused.setdefault(parent, {})
        was = name in refused
        if not deleted and PodView.parse(pod).unschedulable is not None:
            refused[name] = {"metadata": pod.get("metadata"), "status": pod.get("status")}
        else:
            refused.pop(name, None)
        if not refused:
            self.refused.pop(parent, None)
        return was != (name in self.refused.get(parent, {}))


@dataclass
class WatchedCluster:
    """A LLMDeploymentCluster that answers RayServices, RayClusters and refused pods from the store,
    and everything else (writes, a child the watch has not delivered yet) from the API."""

    api: LLMDeploymentCluster
    store: WatchedStore

    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        applied = self.api.apply(manifest)
        if manifest.get("kind") == names.RAYSERVICE_KIND:
            self.store.keep_rayservice(applied)
        return applied

    def get_rayservice(self, namespace: str, name: str) -> dict[str, Any] | None:
        if (held := self.store.rayservice((namespace, name))) is not None:
            return held
        found = self.api.get_rayservice(namespace, name)
        if found is not None:
            self.store.keep_rayservice(found)
        return found

    def get_llmdeployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.api.get_llmdeployment(namespace, name)

    def get_finetunejob(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.api.get_finetunejob(namespace, name)

    def serve_details(self, namespace: str, cluster: str) -> dict[str, Any] | None:
        return self.api.serve_details(namespace, cluster)

    def served_models(self, namespace: str, rayservice: str, api_key: str | None) -> ServedModels:
        return self.api.served_models(namespace, rayservice, api_key)

    def claim_exists(self, namespace: str, name: str) -> bool:
        return self.api.claim_exists(namespace, name)

    def read_secret_key(self, namespace: str, name: str, key: str) -> str | None:
        return self.api.read_secret_key(namespace, name, key)

    def patch_llmdeployment_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.api.patch_llmdeployment_status(namespace, name, status)

    def get_raycluster(self, namespace: str, name: str) -> dict[str, Any] | None:
        found = self.store.clusters.get((namespace, name))
        return found if found is not None else self.api.get_raycluster(namespace, name)

    def list_handoffs(self, namespace: str, name: str) -> tuple[HandOff, ...]:
        index = self.store.handoffs
        if namespace not in index.primed:  # the watch may not have listed it yet
            for body in self.api.list_finetunejobs(namespace):
                index.job_changed(body, deleted=False)
            index.primed.add(namespace)
        return index.for_deployment(namespace, name)

    def list_finetunejobs(self, namespace: str) -> list[dict[str, Any]]:
        return self.api.list_finetunejobs(namespace)

    def list_llmdeployments(self, namespaces: tuple[str, ...]) -> list[dict[str, Any]]:
        return self.api.list_llmdeployments(namespaces)

    def list_pending_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        parent = selector.removeprefix(f"{names.LABEL_LLMDEPLOYMENT}=")
        return list((self.store.refused.get((namespace, parent)) or {}).values())
