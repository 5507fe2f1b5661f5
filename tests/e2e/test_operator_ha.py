"""Two operator replicas with peering, as the chart runs them (its command line, its
ServiceAccount): only the highest priority reconciles; killed, the standby takes over within
a bound and reconciles what comes next."""

from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path

from kubellm_dev.operator_proc import OperatorProcess
from kubellm_dev.procs import Supervisor
from kubellm_dev.waiting import wait_for

from .chart import account_kubeconfig, local_overrides, operator_env
from .conftest import E2ECluster
from .test_install import GROUP, VERSION
from .test_llmdeployment import READY, condition, small

LIFETIME_S = 10  # the replicas' peering lifetime: a standby takes over within about twice this
HANDOVER_BOUND_S = 4 * LIFETIME_S + 30  # twice the lifetime, plus starting the watches


def reconciles(operator: OperatorProcess) -> float:
    """How many reconciles this replica has run (its kubellm_reconcile_total)."""
    samples = re.findall(r"^kubellm_reconcile_total\{[^}]*\} (\S+)$", operator.metrics(), re.M)
    return sum(float(s) for s in samples)


def replica(cluster: E2ECluster, env: dict[str, str], kubeconfig: Path, n: int) -> OperatorProcess:
    folder = Path(tempfile.mkdtemp(prefix=f"kubellm-replica{n}-"))
    port = 18093 + 2 * n
    return OperatorProcess(
        kubeconfig=kubeconfig,
        supervisor=Supervisor(folder),
        metrics_port=port,
        extra_env={
            **env,
            **local_overrides(cluster),
            "KUBELLM_METRICS_PORT": str(port),
            "KUBELLM_HEALTH_PORT": str(port + 1),
            "KUBELLM_PEERING_LIFETIME_S": str(LIFETIME_S),
            "KUBELLM_PEERING_PRIORITY": str(100 * (n + 1)),  # two pods' distinct priorities
        },
        standalone=False,
        name=f"replica-{n}",
    )


def ready(cluster: E2ECluster, namespace: str, name: str, timeout: float) -> None:
    wait_for(
        lambda: cluster.custom.get_namespaced_custom_object(
            GROUP, VERSION, namespace, "llmdeployments", name
        ),
        lambda o: condition(o, "Ready").get("status") == "True",
        timeout=timeout,
        what=f"LLMDeployment {name} Ready",
    )


def test_the_standby_takes_over_when_the_active_replica_dies(
    cluster: E2ECluster, namespace: str, release: str, kubellm_operator: OperatorProcess
) -> None:
    account = f"{release}-kubellm"
    folder = Path(tempfile.mkdtemp(prefix="kubellm-ha-"))
    kubeconfig = account_kubeconfig(cluster, namespace, account, folder)
    env = operator_env(cluster, release, namespace)
    standby, active = (replica(cluster, env, kubeconfig, n) for n in (0, 1))
    kubellm_operator.kill()  # the session's admin operator must not reconcile these
    try:
        active.start()
        standby.start()
        custom = cluster.custom
        custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, "llmdeployments", small("first")
        )
        ready(cluster, namespace, "first", READY)
        assert reconciles(active) > 0
        assert reconciles(standby) == 0  # paused: never two replicas on one object

        active.kill()
        killed = time.monotonic()
        custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, "llmdeployments", small("second")
        )
        ready(cluster, namespace, "second", HANDOVER_BOUND_S)
        handover = time.monotonic() - killed
        print(f"handover: second Ready {handover:.1f} s after the active replica was killed")
        assert reconciles(standby) > 0
        peers = custom.get_namespaced_custom_object(
            "kopf.dev", "v1", namespace, "kopfpeerings", "kubellm"
        )["status"]
        assert any(p.get("priority") == 100 for p in peers.values()), peers
    finally:
        standby.supervisor.stop_all()
        active.supervisor.stop_all()
        kubellm_operator.start()
