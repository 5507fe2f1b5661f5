"""What a kubelet gives a pod, for jobs the real Ray head runs in place of a Ray pod: the token
of the pod's ServiceAccount and the API server's address and CA.

The local cluster's Ray pods are kwok fakes; a RayJob in HTTPMode really runs on the real Ray
head the bridge forwards to. When KubeRay submits such a job, the bridge asks the API server
for a token of the ServiceAccount the RayCluster's head pod names (TokenRequest, as the
kubelet's projected token is) and adds it to the job's environment, so the job acts with
exactly the identity its pod would have: no more (the test proves it), no less.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes import config as kube_config

TOKEN_SECONDS = 3600


class PodIdentity:
    def __init__(self, kubeconfig: Path, folder: Path) -> None:
        self.api = kube_config.new_client_from_config(str(kubeconfig))
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        cluster = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]
        self.server = str(cluster["server"])
        self.ca = folder / "ca.crt"
        self.ca.write_bytes(base64.b64decode(cluster["certificate-authority-data"]))

    def environment(self, namespace: str, raycluster: str) -> dict[str, str]:
        """The variables a pod of ``raycluster`` would see (none if it names no account)."""
        found: Any = client.CustomObjectsApi(self.api).get_namespaced_custom_object(
            "ray.io", "v1", namespace, "rayclusters", raycluster
        )
        pod = found["spec"]["headGroupSpec"]["template"].get("spec") or {}
        account = pod.get("serviceAccountName")
        if not account:
            return {}
        request = client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=TOKEN_SECONDS)
        )
        answer = client.CoreV1Api(self.api).create_namespaced_service_account_token(
            account, namespace, request
        )
        token = self.folder / f"{namespace}.{raycluster}.token"
        token.write_text(answer.status.token)
        return {
            "KUBELLM_TRAIN_API_URL": self.server,
            "KUBELLM_TRAIN_API_CA_FILE": str(self.ca),
            "KUBELLM_TRAIN_API_TOKEN_FILE": str(token),
        }

    def submission(self, namespace: str, raycluster: str, body: bytes) -> bytes:
        """A job submission with the pod's identity in its runtime environment."""
        request = json.loads(body or b"{}")
        extra = self.environment(namespace, raycluster)
        if extra:
            runtime = request.get("runtime_env") or {}
            runtime["env_vars"] = {**(runtime.get("env_vars") or {}), **extra}
            request["runtime_env"] = runtime
        return json.dumps(request).encode()
