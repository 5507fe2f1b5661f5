"""The local cluster: etcd, control plane, kwok GPU pools, KubeRay and the Ray bridge (loopback)."""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any

import yaml

from kubellm_dev import build, kwok, netns, pki
from kubellm_dev.bridge_client import BridgeClient
from kubellm_dev.errors import ComponentError, HarnessError
from kubellm_dev.operator_proc import OperatorProcess, install_crds
from kubellm_dev.paths import Paths
from kubellm_dev.procs import Managed, Supervisor, stop_process_group
from kubellm_dev.ray_head import RayPorts, start_ray_head

SERVICE_CIDR = "10.96.0.0/16"
KUBERNETES_SERVICE_IP = "10.96.0.1"
STATE_FILE = "cluster.json"
NODE_READY_JSONPATH = (
    "jsonpath={range .items[*]}{.status.conditions[?(@.type=='Ready')].status}{'\\n'}{end}"
)


@dataclass(frozen=True)
class Ports:
    """Every listener is on 127.0.0.1 inside the cluster's own network namespace."""

    etcd_client: int = 2379
    etcd_peer: int = 2380
    apiserver: int = 6443
    controller_manager: int = 10257
    scheduler: int = 10259
    kwok: int = 10247
    kuberay_metrics: int = 18080
    kuberay_probes: int = 18081
    bridge: int = 18265


@dataclass
class ClusterInfo:
    """What a running cluster tells its users; also its state file."""

    name: str
    state_dir: str
    kubeconfig: str
    supervisor_pid: int
    ports: Ports
    pids: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ClusterInfo:
        raw = json.loads(text)
        raw["ports"] = Ports(**raw["ports"])
        return cls(**raw)


def _https_ok(url: str, context: ssl.SSLContext) -> bool:
    with urllib.request.urlopen(url, timeout=2, context=context) as resp:  # noqa: S310
        return bool(resp.status == HTTPStatus.OK)


def _http_ok(url: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=2) as resp:
        return bool(resp.status == HTTPStatus.OK)


def _insecure_context() -> ssl.SSLContext:
    # kcm and the scheduler serve /healthz with self-signed certificates generated at start.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def read_state(state_dir: Path) -> ClusterInfo | None:
    try:
        return ClusterInfo.from_json((state_dir / STATE_FILE).read_text())
    except FileNotFoundError:
        return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LocalCluster:
    """Starts the components in dependency order, each with a deadline, and stops all on failure."""

    def __init__(
        self,
        paths: Paths,
        name: str = "default",
        ports: Ports | None = None,
        pools: tuple[kwok.Pool, ...] | None = None,
    ) -> None:
        self.paths = paths
        self.pools = pools if pools is not None else kwok.load_pools()
        self.name = name
        self.ports = ports or Ports()
        self.state_dir = paths.cluster_state(name)
        self.log_dir = self.state_dir / "logs"
        self.supervisor = Supervisor(self.log_dir)
        self.info: ClusterInfo | None = None

    # -- public --------------------------------------------------------------------------------
    def up(self, *, real_ray: bool = False, operator: bool = False) -> ClusterInfo:
        netns.require_loopback_only("the local cluster")
        existing = read_state(self.state_dir)
        if existing is not None and pid_alive(existing.supervisor_pid):
            raise HarnessError(
                f"cluster {self.name!r} is already running "
                f"(supervisor pid {existing.supervisor_pid}, "
                f"kubeconfig {existing.kubeconfig}); use it, or `kubellm-dev cluster down` first"
            )
        binaries = build.installed(self.paths)
        shutil.rmtree(self.state_dir, ignore_errors=True)
        self.state_dir.mkdir(parents=True)
        started = time.monotonic()
        try:
            info = self._start(binaries, started)
            if real_ray:
                self.start_real_ray()
                self.bridge.set_default_mode("real")
            if operator:
                self.start_operator()
        except BaseException:
            self.supervisor.stop_all()
            raise
        info.pids = {m.name: m.pid for m in self.supervisor.procs}
        (self.state_dir / STATE_FILE).write_text(info.to_json())
        self.info = info
        return info

    def down(self) -> None:
        self.supervisor.stop_all()
        (self.state_dir / STATE_FILE).unlink(missing_ok=True)

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def ray_proxy(self) -> str:
        """The bridge as an HTTP proxy: how KubeRay and the operator reach Ray heads here."""
        return f"http://127.0.0.1:{self.ports.bridge}"

    @property
    def bridge(self) -> BridgeClient:
        return BridgeClient(self.ports.bridge)

    def start_real_ray(self) -> RayPorts:
        """Start a real Ray head and point the bridge's real mode at it (idempotent)."""
        ports = RayPorts()
        if not any(m.name == "ray-head" for m in self.supervisor.procs):
            # Ray's unix socket paths must stay short: keep its temp dir directly under /tmp.
            start_ray_head(
                self.supervisor, Path(tempfile.gettempdir()) / f"kubellm-ray-{self.name}", ports
            )
        self.bridge.set_real(
            dashboard=f"http://127.0.0.1:{ports.dashboard}", serve=f"http://127.0.0.1:{ports.serve}"
        )
        return ports

    def start_operator(self) -> OperatorProcess:
        """Install the repository's CRDs and run the kubellm operator beside the cluster."""
        install_crds(self.paths.kubectl, self.kubeconfig, self.paths.repo / "crds")
        operator = OperatorProcess(
            kubeconfig=self.kubeconfig, supervisor=self.supervisor, ray_proxy=self.ray_proxy
        )
        operator.start()
        return operator

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> str:
        return kubectl(self.paths, self.kubeconfig, *args, input=input, check=check)

    # -- start sequence ------------------------------------------------------------------------
    def _start(self, b: build.Binaries, started: float) -> ClusterInfo:
        p = self.ports
        sup = self.supervisor
        timings: dict[str, float] = {}
        keys = pki.generate(self.state_dir / "pki", KUBERNETES_SERVICE_IP)
        kubeconfig = pki.write_kubeconfig(self.kubeconfig, keys, f"https://127.0.0.1:{p.apiserver}")

        etcd_url = f"http://127.0.0.1:{p.etcd_client}"
        peer_url = f"http://127.0.0.1:{p.etcd_peer}"
        etcd = sup.start(
            "etcd",
            [
                str(b.etcd),
                "--name=kubellm",
                f"--data-dir={self.state_dir / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=kubellm={peer_url}",
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
            ports=[p.etcd_client, p.etcd_peer],
        )
        sup.wait_ready(etcd, lambda: _http_ok(f"{etcd_url}/health"))

        apiserver = sup.start(
            "kube-apiserver",
            [
                str(b.kube_apiserver),
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={p.apiserver}",
                f"--cert-dir={keys.dir}",
                f"--tls-cert-file={keys.apiserver_crt}",
                f"--tls-private-key-file={keys.apiserver_key}",
                f"--client-ca-file={keys.ca_crt}",
                "--authorization-mode=RBAC",
                f"--service-account-issuer=https://127.0.0.1:{p.apiserver}",
                f"--service-account-key-file={keys.sa_pub}",
                f"--service-account-signing-key-file={keys.sa_key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--allow-privileged=true",
                # The `kubernetes` Service cannot point at 127.0.0.1 (loopback endpoints are
                # invalid); nothing in the tests dials it, so skip its endpoint reconciler.
                "--endpoint-reconciler-type=none",
                "--profiling=false",
            ],
            ports=[p.apiserver],
        )
        admin = ssl.create_default_context(cafile=str(keys.ca_crt))
        admin.load_cert_chain(str(keys.admin_crt), str(keys.admin_key))
        sup.wait_ready(
            apiserver,
            lambda: _https_ok(f"https://127.0.0.1:{p.apiserver}/readyz", admin),
            what="/readyz",
        )
        timings["apiserverReadySeconds"] = round(time.monotonic() - started, 2)

        insecure = _insecure_context()
        kcm = sup.start(
            "kube-controller-manager",
            [
                str(b.kube_controller_manager),
                f"--kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={p.controller_manager}",
                "--leader-elect=false",
                f"--service-account-private-key-file={keys.sa_key}",
                f"--root-ca-file={keys.ca_crt}",
                "--use-service-account-credentials=false",
                f"--cluster-signing-cert-file={keys.ca_crt}",
                f"--cluster-signing-key-file={keys.ca_key}",
            ],
            ports=[p.controller_manager],
        )
        scheduler = sup.start(
            "kube-scheduler",
            [
                str(b.kube_scheduler),
                f"--kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={p.scheduler}",
                "--leader-elect=false",
            ],
            ports=[p.scheduler],
        )
        kwok_config = self.state_dir / "kwok.yaml"
        kwok_config.write_text(kwok.kwok_config(b.kwok_stages.read_text(), port=p.kwok))
        kwok_proc = sup.start(
            "kwok",
            [str(b.kwok), f"--kubeconfig={kubeconfig}", f"--config={kwok_config}"],
            ports=[p.kwok],
        )
        sup.wait_ready(
            kcm, lambda: _https_ok(f"https://127.0.0.1:{p.controller_manager}/healthz", insecure)
        )
        sup.wait_ready(
            scheduler, lambda: _https_ok(f"https://127.0.0.1:{p.scheduler}/healthz", insecure)
        )

        self.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(kwok.node_manifests(self.pools)))
        self.kubectl(
            "apply", "--server-side", "--force-conflicts", "-f", str(self.paths.kuberay_crds)
        )
        self.kubectl(
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/rayclusters.ray.io",
            "crd/rayjobs.ray.io",
            "crd/rayservices.ray.io",
        )

        bridge = sup.start(
            "ray-bridge",
            [
                sys.executable,
                "-m",
                "kubellm_dev",
                "bridge",
                "serve",
                f"--port={p.bridge}",
                f"--kubeconfig={kubeconfig}",
            ],
            ports=[p.bridge],
        )
        sup.wait_ready(bridge, BridgeClient(p.bridge).alive)

        kuberay = sup.start(
            "kuberay-operator",
            [
                str(b.ray_operator),
                f"--kubeconfig={kubeconfig}",
                f"--metrics-addr=127.0.0.1:{p.kuberay_metrics}",
                f"--health-probe-bind-address=127.0.0.1:{p.kuberay_probes}",
                "--enable-leader-election=false",
                "--log-stdout-encoder=console",
            ],
            env={
                # Every plain-HTTP call KubeRay makes to a Ray head or pod goes to the bridge;
                # Go never proxies loopback, so the HTTPS apiserver traffic is untouched.
                "HTTP_PROXY": self.ray_proxy,
                "http_proxy": f"http://127.0.0.1:{p.bridge}",
                "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost",
            },
            ports=[p.kuberay_metrics, p.kuberay_probes],
        )
        sup.wait_ready(
            kuberay, lambda: _http_ok(f"http://127.0.0.1:{p.kuberay_probes}/readyz"), what="/readyz"
        )
        self._wait_nodes_ready(kwok_proc)
        timings["kuberayReadySeconds"] = round(time.monotonic() - started, 2)

        return ClusterInfo(
            name=self.name,
            state_dir=str(self.state_dir),
            kubeconfig=str(kubeconfig),
            supervisor_pid=os.getpid(),
            ports=p,
            pids={m.name: m.pid for m in sup.procs},
            timings=timings,
        )

    def _wait_nodes_ready(self, kwok_proc: Managed) -> None:
        expected = sum(pool.nodes for pool in self.pools)

        def ready() -> bool:
            out = self.kubectl(
                "get",
                "nodes",
                "-o",
                NODE_READY_JSONPATH,
                check=False,
            )
            return out.split().count("True") == expected

        self.supervisor.wait_ready(kwok_proc, ready, what=f"reporting {expected} Ready nodes")


def kubectl(
    paths: Paths, kubeconfig: Path, *args: str, input: str | None = None, check: bool = True
) -> str:
    if not paths.kubectl.exists():
        raise HarnessError(f"kubectl not found at {paths.kubectl}: run scripts/install.sh")
    result = subprocess.run(
        [str(paths.kubectl), f"--kubeconfig={kubeconfig}", *args],
        input=input,
        capture_output=True,
        text=True,
        check=False,
    )
    if check and result.returncode != 0:
        raise ComponentError(
            "kubectl", f"`kubectl {' '.join(args)}` failed: {result.stderr.strip()}"
        )
    return result.stdout


def stop_running(state_dir: Path, timeout: float = 30.0) -> bool:
    """Stop a cluster started by another process (`cluster up`): signal its supervisor."""
    info = read_state(state_dir)
    if info is None or not pid_alive(info.supervisor_pid):
        return False
    stop_process_group(info.supervisor_pid, grace=timeout)
    return True


def describe(info: ClusterInfo) -> dict[str, Any]:
    return {
        "kubeconfig": info.kubeconfig,
        "logs": str(Path(info.state_dir) / "logs"),
        "bridge": f"http://127.0.0.1:{info.ports.bridge}/__bridge/state",
        "timings": info.timings,
    }
