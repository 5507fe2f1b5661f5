"""The Ray edge: what a head says its Serve application runs, and what Serve really serves.

KubeRay's copy of the application status in the RayService can predate the config it has just
pushed (it reads the status, then pushes, then writes both), so Ready is confirmed here, at the
source: the config the head last applied and its status, read in one answer. An adapter is
called served only once the Serve endpoint's ``/v1/models`` lists it (the probe below).
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

from kubellm_operator import metrics, names
from kubellm_operator.status.rayhead import ServedModels

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
        answer = self._get_json("ray head", f"http://{host}:{self.port}/api/serve/applications/")
        if isinstance(answer, str):
            logger.info("Ray head %s: %s", host, answer)
            return None
        return answer if isinstance(answer, dict) else None

    def served_models(self, namespace: str, rayservice: str, api_key: str | None) -> ServedModels:
        """``GET /v1/models`` through the RayService's serve Service, as a client would call
        it (with the deployment's API key): the answering replica's loaded models."""
        host = f"{names.serve_service_name(rayservice)}.{namespace}.svc.{self.cluster_domain}"
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        url = f"http://{host}:{names.SERVE_PORT}/v1/models"
        answer = self._get_json("serve probe", url, headers)
        if isinstance(answer, str):
            return ServedModels(error=f"{names.serve_service_name(rayservice)} {answer}")
        return ServedModels.parse(answer)

    def _get_json(self, call: str, url: str, headers: dict[str, str] | None = None) -> Any:
        """The decoded JSON answer, or a short text saying why there is none."""
        started = time.perf_counter()
        try:
            reply = self._http.request("GET", url, headers=headers)
        except HTTPError as exc:
            return f"did not answer: {type(exc).__name__}"
        finally:
            metrics.API_CALL_SECONDS.labels(call).observe(time.perf_counter() - started)
        if reply.status != HTTPStatus.OK:
            return f"answered HTTP {reply.status}"
        try:
            return json.loads(reply.data)
        except ValueError:
            return "answered with something that is not JSON"
