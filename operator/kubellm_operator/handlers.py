"""Kopf wiring only: a change puts the LLMDeployment or FineTuneJob it concerns on its kind's
work queue.

Every reconcile (a spec change, an operator restart, KubeRay's status, a Ray pod the scheduler
refuses) then takes the one retried path of its kind K: controller/workqueue.py →
controller/K.py (the runner) → service/K.py (sync), over the edge/ (kube.py). Only event
handlers are used: Kopf writes no annotations and puts no finalizer on the objects, so an
LLMDeployment can be deleted while the operator is down and a create costs no extra write.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, cast

import kopf
from kubernetes import client
from kubernetes import config as kube_config

from kubellm_operator import metrics, names
from kubellm_operator.api.refs import Key, key_of
from kubellm_operator.config import load_config
from kubellm_operator.controller import finetunejob, llmdeployment
from kubellm_operator.controller.watched import WatchedCluster, WatchedStore
from kubellm_operator.controller.workqueue import Backoff, WorkQueue
from kubellm_operator.edge.events import EventPoster
from kubellm_operator.edge.kube import Kube
from kubellm_operator.edge.rayhead import RayHead
from kubellm_operator.errors import REASONS

LLMD = (names.GROUP, names.VERSION, names.LLMDEPLOYMENT_PLURAL)
FTJ = (names.GROUP, names.VERSION, names.FINETUNEJOB_PLURAL)
RAYJOBS = (names.RAY_GROUP, names.RAY_VERSION, names.RAYJOB_PLURAL)
RAYSERVICES = (names.RAY_GROUP, names.RAY_VERSION, names.RAYSERVICE_PLURAL)
RAYCLUSTERS = (names.RAY_GROUP, names.RAY_VERSION, names.RAYCLUSTER_PLURAL)
OURS = {names.LABEL_MANAGED_BY: names.MANAGER}


def _parent_key(body: Mapping[str, Any]) -> Key | None:
    meta = body.get("metadata") or {}
    parent = (meta.get("labels") or {}).get(names.LABEL_LLMDEPLOYMENT)
    return (str(meta["namespace"]), str(parent)) if parent and meta.get("namespace") else None


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Kopf bookkeeping under kubellm.io, one API client, the work queue and its workers."""
    config = load_config()
    settings.persistence.finalizer = f"{names.GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=names.GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=names.GROUP, key="last-handled-configuration"
    )
    settings.peering.lifetime = config.peering_lifetime_s
    settings.posting.level = logging.WARNING
    # Kopf logs every handled event at INFO ("Handler ... succeeded"): with event handlers
    # only, that is a line per watch event, which costs CPU at scale and says nothing.
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    try:
        kube_config.load_incluster_config()
    except kube_config.ConfigException:
        kube_config.load_kube_config()
    ray_head = RayHead(
        config.cluster_domain,
        config.ray_dashboard_port,
        config.ray_dashboard_proxy,
        config.ray_dashboard_timeout_s,
        connections=config.workers,
    )
    api = client.ApiClient()
    kube = Kube(api, ray_head, EventPoster(api))
    store = WatchedStore()
    reconciler = llmdeployment.Reconciler(WatchedCluster(kube, store), config, kube.post_event)

    async def work(key: Any, body: Any) -> bool | float:
        return await asyncio.to_thread(reconciler, key, body)

    queue = WorkQueue(
        work,
        workers=config.workers,
        backoff=Backoff(config.retry_base_delay_s, config.retry_max_delay_s),
        on_wait=metrics.QUEUE_WAIT.observe,
    )
    memo["reconciler"], memo["queue"], memo["store"] = reconciler, queue, store
    memo["settle_s"] = config.child_settle_s
    memo["workers"] = asyncio.create_task(queue.run())
    jobs = finetunejob.Reconciler(kube, config, kube.post_event)

    async def job_work(key: Any, _: Any) -> bool | float:
        return await asyncio.to_thread(jobs, key)

    job_queue = WorkQueue(
        job_work,
        workers=max(1, config.workers // 2),
        backoff=Backoff(config.retry_base_delay_s, config.retry_max_delay_s),
    )
    memo["jobs"], memo["job_queue"] = jobs, job_queue
    memo["job_workers"] = asyncio.create_task(job_queue.run())
    metrics.start_at_zero((names.LLMDEPLOYMENT_KIND, names.FINETUNEJOB_KIND), REASONS)
    metrics.serve(config.metrics_host, config.metrics_port)


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    memo["workers"].cancel()
    memo["job_workers"].cancel()


def _queue(memo: kopf.Memo) -> WorkQueue:
    queue: WorkQueue = memo["queue"]
    return queue


@kopf.on.event(*LLMD)
async def llmdeployment_changed(
    body: kopf.Body, type: str | None, memo: kopf.Memo, **_: Any
) -> None:
    """Created, changed, listed at start-up, or deleted: reconcile it (or forget it)."""
    key, reconciler = key_of(body), cast(llmdeployment.Reconciler, memo["reconciler"])
    if type == "DELETED":
        _queue(memo).forget(key)
        reconciler.forget(key)
        return
    reconciler.remember(key, body)
    if not reconciler.is_echo(key, body):
        _queue(memo).add(key)  # the reconcile reads the newest remembered body
    # Jobs handing their adapter to it learn whether it is served (their Deployed).
    for job in cast(WatchedStore, memo["store"]).handoffs.jobs_for(*key):
        cast(WorkQueue, memo["job_queue"]).add(job, after_s=memo["settle_s"])


@kopf.on.event(*RAYSERVICES, labels=OURS)
async def rayservice_changed(body: kopf.Body, type: str | None, memo: kopf.Memo, **_: Any) -> None:
    """KubeRay's status changed (or the child went away): re-derive the parent. The body is
    kept, so the reconcile does not read the RayService again."""
    cast(WatchedStore, memo["store"]).rayservice_changed(body, deleted=type == "DELETED")
    if (key := _parent_key(body)) is not None:
        _queue(memo).add(key, after_s=memo["settle_s"])


@kopf.on.event(*RAYCLUSTERS, labels=OURS)
async def raycluster_changed(body: kopf.Body, type: str | None, memo: kopf.Memo, **_: Any) -> None:
    """Workers became ready: KubeRay does not always rewrite the RayService for that. The
    cluster's status is kept from the event, so the reconcile does not read it again."""
    cast(WatchedStore, memo["store"]).raycluster_changed(body, deleted=type == "DELETED")
    if (key := _parent_key(body)) is not None:
        _queue(memo).add(key, after_s=memo["settle_s"])


@kopf.on.event("", "v1", "pods", labels={names.LABEL_LLMDEPLOYMENT: kopf.PRESENT})
async def ray_pod_changed(body: kopf.Body, type: str | None, memo: kopf.Memo, **_: Any) -> None:
    """The scheduler refused a Ray pod, or placed one it had refused: the parent's status
    says why (the refused pods are kept from these events instead of listing pods)."""
    if (key := _parent_key(body)) is None:
        return
    store = cast(WatchedStore, memo["store"])
    if store.pod_changed(key, body, deleted=type == "DELETED"):
        _queue(memo).add(key, after_s=memo["settle_s"])


def _job_key(body: Mapping[str, Any]) -> Key | None:
    meta = body.get("metadata") or {}
    parent = (meta.get("labels") or {}).get(names.LABEL_FINETUNEJOB)
    return (str(meta["namespace"]), str(parent)) if parent and meta.get("namespace") else None


@kopf.on.event(*FTJ)
async def finetunejob_changed(body: kopf.Body, type: str | None, memo: kopf.Memo, **_: Any) -> None:
    """Created, changed (the trainer's progress too), listed at start-up, or deleted."""
    key, jobs = key_of(body), cast(finetunejob.Reconciler, memo["jobs"])
    queue = cast(WorkQueue, memo["job_queue"])
    # A hand-off appeared, changed (the job succeeded) or went: its deployment re-derives.
    for deployment in cast(WatchedStore, memo["store"]).handoffs.job_changed(
        body, deleted=type == "DELETED"
    ):
        _queue(memo).add(deployment)
    if type == "DELETED":
        queue.forget(key)
        jobs.forget(key)
        return
    jobs.remember(key, body)
    queue.add(key)


@kopf.on.event(*RAYJOBS, labels=OURS)
async def rayjob_changed(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """KubeRay's view of the run changed: re-derive the job's status."""
    if (key := _job_key(body)) is not None:
        cast(WorkQueue, memo["job_queue"]).add(key, after_s=memo["settle_s"])
