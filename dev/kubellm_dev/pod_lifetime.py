"""What deleting a Ray cluster's pods does to the jobs running in them, for jobs the real Ray
head runs in place of a Ray pod.

In a cluster, a RayJob's Ray job runs inside its RayCluster's pods: when KubeRay deletes the
RayCluster (a suspend, a retry, a deadline, the TTL, the RayJob deleted) the processes die with
the pods. Locally the pods are kwok fakes and the job runs on the one real Ray head, which no
deletion reaches. The bridge records each job it forwarded for a RayCluster, and a
:class:`JobReaper` stops the job on the real head once that RayCluster is gone, as the
kubelet's kill would.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from kubernetes import client
from kubernetes.client.exceptions import ApiException

logger = logging.getLogger(__name__)
POLL_S = 1.0
CALL_TIMEOUT_S = 30.0
MAX_TRACKED = 1024
OK, NOT_FOUND = 200, 404
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "STOPPED"})


@dataclass(frozen=True)
class Tracked:
    namespace: str
    raycluster: str
    submission_id: str


def raycluster_exists(api: client.ApiClient) -> Callable[[str, str], bool]:
    """Whether a RayCluster (namespace, name) still exists, asked of the API server."""

    def exists(namespace: str, name: str) -> bool:
        try:
            client.CustomObjectsApi(api).get_namespaced_custom_object(
                "ray.io", "v1", namespace, "rayclusters", name
            )
        except ApiException as exc:
            if exc.status == NOT_FOUND:
                return False
            raise
        return True

    return exists


@dataclass
class JobReaper:
    cluster_exists: Callable[[str, str], bool]
    dashboard: Callable[[], str | None]
    """The real head's dashboard address, as the bridge is configured now."""
    tracked: dict[str, Tracked] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopped: threading.Event = field(default_factory=threading.Event)

    def track(self, namespace: str, raycluster: str, submission_id: str) -> None:
        with self.lock:
            if len(self.tracked) >= MAX_TRACKED:  # bounded: the oldest is dropped
                self.tracked.pop(next(iter(self.tracked)))
            self.tracked[submission_id] = Tracked(namespace, raycluster, submission_id)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._loop, name="job-reaper", daemon=True)
        thread.start()
        return thread

    def _loop(self) -> None:
        while not self.stopped.wait(POLL_S):
            try:
                self.sweep()
            except Exception:  # the bridge outlives any one bad sweep
                logger.exception("job reaper sweep failed")

    def sweep(self) -> list[str]:
        """Stop the jobs whose RayCluster is gone; forget those that ended. Returns the stopped."""
        with self.lock:
            jobs = list(self.tracked.values())
        stopped = []
        for job in jobs:
            status = self._job_status(job.submission_id)
            if status is None or status in TERMINAL:
                self._forget(job)
            elif not self.cluster_exists(job.namespace, job.raycluster):
                self._call("POST", f"/api/jobs/{job.submission_id}/stop")
                logger.info("RayCluster %s/%s is gone: stopped its job %s", *_names(job))
                stopped.append(job.submission_id)
                self._forget(job)
        return stopped

    def _forget(self, job: Tracked) -> None:
        with self.lock:
            self.tracked.pop(job.submission_id, None)

    def _job_status(self, submission_id: str) -> str | None:
        answer = self._call("GET", f"/api/jobs/{submission_id}")
        if answer is None:
            return None
        return str(json.loads(answer).get("status") or "")

    def _call(self, method: str, path: str) -> bytes | None:
        base = self.dashboard()
        if not base:
            return None
        upstream = urlsplit(base)
        conn = http.client.HTTPConnection(
            upstream.hostname or "127.0.0.1", upstream.port or 80, timeout=CALL_TIMEOUT_S
        )
        try:
            conn.request(method, path)
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        return data if resp.status == OK else None


def _names(job: Tracked) -> tuple[str, str, str]:
    return job.namespace, job.raycluster, job.submission_id
