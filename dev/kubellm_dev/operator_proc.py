"""The kubellm operator as a supervised process, run out of cluster against a kubeconfig."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from kubellm_dev.procs import Managed, Supervisor

DEFAULT_METRICS_PORT = 18090


@dataclass
class OperatorProcess:
    """Starts, kills (SIGKILL, to test crash recovery) and restarts the operator."""

    kubeconfig: Path
    supervisor: Supervisor
    metrics_port: int = DEFAULT_METRICS_PORT
    ray_proxy: str | None = None
    """The Ray bridge, through which the operator reaches Ray heads (as KubeRay does)."""
    extra_env: dict[str, str] = field(default_factory=dict)
    standalone: bool = True
    """``--standalone`` (no peering); False runs the chart's exact command line."""
    name: str = "kubellm-operator"
    managed: Managed | None = None

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def metrics(self) -> str:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(self.metrics_url, timeout=5) as resp:
            return str(resp.read().decode())

    def start(self) -> Managed:
        self.managed = self.supervisor.start(
            self.name,
            [
                sys.executable,
                "-m",
                "kubellm_operator",
                *(["--standalone"] if self.standalone else []),
            ],
            env={
                "KUBECONFIG": str(self.kubeconfig),
                "KUBELLM_METRICS_PORT": str(self.metrics_port),
                "KUBELLM_LOG_FORMAT": "json",
                **(self._local_cluster_env() if self.ray_proxy else {}),
                **self.extra_env,
            },
            ports=[self.metrics_port],
        )
        self.supervisor.wait_ready(
            self.managed, lambda: bool(self.metrics()), what="serving metrics"
        )
        return self.managed

    def _local_cluster_env(self) -> dict[str, str]:
        """Behind the local cluster's bridge: Ray heads through it, and training runs
        submitted over HTTP (a submitter Job's pod is a kwok fake that runs nothing)."""
        assert self.ray_proxy is not None
        return {
            "KUBELLM_RAY_DASHBOARD_PROXY": self.ray_proxy,
            "KUBELLM_RAYJOB_SUBMISSION_MODE": "HTTPMode",
            "KUBELLM_TRAIN_STATUS_INTERVAL_S": "1",
        }

    def kill(self) -> None:
        """SIGKILL: no chance to finish what it was doing."""
        if self.managed is None:
            return
        os.kill(self.managed.pid, signal.SIGKILL)
        self.managed.popen.wait(timeout=30)
        self.supervisor.procs.remove(self.managed)
        self.managed = None


def install_crds(kubectl: Path, kubeconfig: Path, crds: Path) -> None:
    """`kubectl apply --server-side -f crds/` and wait until the API serves them."""
    for args in (
        ["apply", "--server-side", "--force-conflicts", "-f", str(crds)],
        [
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/llmdeployments.kubellm.io",
            "crd/finetunejobs.kubellm.io",
        ],
    ):
        subprocess.run(
            [str(kubectl), f"--kubeconfig={kubeconfig}", *args], check=True, capture_output=True
        )
