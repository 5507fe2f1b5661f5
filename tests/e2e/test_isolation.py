"""The e2e tier runs in a loopback-only namespace: pod and Service IPs are bookkeeping only."""

from __future__ import annotations

import errno
import socket

import pytest
from kubernetes import client

from kubellm_dev import netns
from kubellm_dev.waiting import wait_for

from .conftest import E2ECluster


@pytest.fixture
def local(cluster: E2ECluster) -> E2ECluster:
    if cluster.local is None:
        pytest.skip("isolation is a property of the local cluster, not of an existing one")
    return cluster


def _connect_error(address: str, port: int) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        try:
            sock.connect((address, port))
        except OSError as exc:
            return exc.errno or -1
    return 0


def test_the_only_network_interface_is_loopback(local: E2ECluster) -> None:
    assert netns.interfaces() == ["lo"]


def test_a_pod_ip_cannot_be_reached(local: E2ECluster, namespace: str) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "target"},
        "spec": {"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}]}]},
    }
    local.core.create_namespaced_pod(namespace, pod)
    ip = wait_for(
        lambda: local.core.read_namespaced_pod("target", namespace).status.pod_ip,
        bool,
        timeout=60,
        what="kwok to give the pod an IP",
    )
    assert not ip.startswith("127.")
    # No route: the kernel refuses at once instead of sending anything anywhere.
    assert _connect_error(ip, 80) == errno.ENETUNREACH


def test_a_service_ip_cannot_be_reached(local: E2ECluster, namespace: str) -> None:
    service = local.core.create_namespaced_service(
        namespace,
        client.V1Service(
            metadata=client.V1ObjectMeta(name="svc"),
            spec=client.V1ServiceSpec(ports=[client.V1ServicePort(port=80)], selector={"a": "b"}),
        ),
    )
    assert _connect_error(service.spec.cluster_ip, 80) == errno.ENETUNREACH
