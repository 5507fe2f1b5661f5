"""Status writes to the run's FineTuneJob through the Kubernetes API, as the pod's own
service account (the operator gives each job one that may patch only that job's status).

A JSON merge patch of the status subresource, carrying the object's uid: a namesake created
after this run's object was deleted is refused by the API server, never written. The token
is read for every write, so a rotated projected token is picked up.
"""

from __future__ import annotations

import json
import os
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubellm_runtime.contract import StatusTarget

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
GROUP_PATH = "apis/kubellm.io/v1alpha1"


class StatusWriteError(RuntimeError):
    """The API server refused or did not answer a status write."""


@dataclass(frozen=True)
class ApiServer:
    """How to reach the API server: in a pod, its service account; elsewhere (the local
    cluster's Ray head), the KUBELLM_TRAIN_API_* variables the harness sets."""

    url: str
    token_file: Path
    ca_file: Path | None

    @classmethod
    def from_environment(cls) -> ApiServer:
        url = os.environ.get("KUBELLM_TRAIN_API_URL")
        if url is None:
            host = os.environ.get("KUBERNETES_SERVICE_HOST")
            port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
            if host is None:
                raise StatusWriteError("not in a pod and KUBELLM_TRAIN_API_URL is not set")
            url = f"https://{host}:{port}"
        token = Path(os.environ.get("KUBELLM_TRAIN_API_TOKEN_FILE", SERVICE_ACCOUNT / "token"))
        ca = os.environ.get("KUBELLM_TRAIN_API_CA_FILE", str(SERVICE_ACCOUNT / "ca.crt"))
        return cls(url.rstrip("/"), token, Path(ca) if ca else None)


class KubeStatusSink:
    """Writes ``status`` fields of one FineTuneJob."""

    def __init__(self, target: StatusTarget, server: ApiServer, timeout_s: float = 10.0) -> None:
        self.target = target
        self.server = server
        self.timeout_s = timeout_s
        self._context = ssl.create_default_context(
            cafile=str(server.ca_file) if server.ca_file and server.ca_file.is_file() else None
        )

    def write(self, status: dict[str, Any]) -> None:
        t = self.target
        url = (
            f"{self.server.url}/{GROUP_PATH}/namespaces/{t.namespace}/finetunejobs/{t.name}/status"
        )
        body = json.dumps({"metadata": {"uid": t.uid}, "status": status}).encode()
        token = self.server.token_file.read_text().strip()
        request = urllib.request.Request(  # noqa: S310 - the API server's https URL
            url,
            data=body,
            method="PATCH",
            headers={
                "Content-Type": "application/merge-patch+json",
                "Authorization": f"Bearer {token}",
            },
        )
        try:
            with urllib.request.urlopen(  # noqa: S310
                request, timeout=self.timeout_s, context=self._context
            ) as reply:
                reply.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode(errors="replace")
            raise StatusWriteError(f"status write refused: {exc.code} {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise StatusWriteError(f"status write failed: {exc}") from None
