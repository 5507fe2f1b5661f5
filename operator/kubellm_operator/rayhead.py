"""The Ray dashboard edge: what a head says its Serve application runs (as KubeRay asks it).

KubeRay's copy of the application status in the RayService can predate the config it has just
pushed (it reads the status, then pushes, then writes both), so Ready is confirmed here, at the
source: the config the head last applied and its status, read in one answer.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import urllib3
from urllib3.exceptions import HTTPError

from kubellm_operator import metrics

logger = logging.getLogger(__name__)


@dataclass
class RayHead:
    """GET /api/serve/applications/ on a RayCluster's head Service (through a proxy if set)."""

    cluster_domain: str = "cluster.local"
    port: int = 8265
    proxy: str | None = None
    timeout_s: float = 3.0
    connections: int = 4
    """Kept-open connections per head (or to the proxy): one per reconcile worker."""
    _http: urllib3.PoolManager = field(init=False)

    def __post_init__(self) -> None:
        timeout = urllib3.Timeout(connect=self.timeout_s, read=self.timeout_s)
        retries = urllib3.Retry(total=0)
        self._http = (
            urllib3.ProxyManager(
                self.proxy, timeout=timeout, retries=retries, maxsize=self.connections
            )
            if self.proxy
            else urllib3.PoolManager(timeout=timeout, retries=retries, maxsize=self.connections)
        )

    def serve_details(self, namespace: str, cluster: str) -> dict[str, Any] | None:
        """The dashboard's Serve details, or None when the head does not answer (then the
        config cannot be confirmed, and Ready waits)."""
        host = f"{cluster}-head-svc.{namespace}.svc.{self.cluster_domain}"
        url = f"http://{host}:{self.port}/api/serve/applications/"
        started = time.perf_counter()
        try:
            reply = self._http.request("GET", url)
        except HTTPError as exc:
            logger.info("Ray head %s did not answer: %s", host, exc)
            return None
        finally:
            metrics.API_CALL_SECONDS.labels("ray head").observe(time.perf_counter() - started)
        if reply.status != HTTPStatus.OK:
            logger.info("Ray head %s answered %s", host, reply.status)
            return None
        try:
            details: dict[str, Any] = json.loads(reply.data)
        except ValueError:
            return None
        return details
