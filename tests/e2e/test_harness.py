"""The harness fails clearly and leaves nothing behind when a cluster cannot start."""

from __future__ import annotations

from dataclasses import fields

import pytest

from kubellm_dev.cluster import LocalCluster, Ports, pid_alive
from kubellm_dev.errors import HarnessError, PortInUseError
from kubellm_dev.paths import default_paths

from .conftest import E2ECluster


def shifted(offset: int, **keep: int) -> Ports:
    """Every default port moved by ``offset`` (so free), except those given."""
    moved = {f.name: getattr(Ports(), f.name) + offset for f in fields(Ports)}
    return Ports(**{**moved, **keep})


@pytest.fixture
def local(cluster: E2ECluster) -> LocalCluster:
    if cluster.local is None:
        pytest.skip("a property of the local harness, not of an existing cluster")
    return cluster.local


def test_starting_the_same_cluster_twice_is_refused_with_a_clear_message(
    local: LocalCluster,
) -> None:
    again = LocalCluster(default_paths(), name=local.name)
    with pytest.raises(HarnessError, match=r"cluster 'pytest' is already running"):
        again.up()
    assert local.info is not None
    assert pid_alive(local.info.pids["kube-apiserver"])


def test_a_taken_port_names_the_component_and_nothing_is_left_running(local: LocalCluster) -> None:
    # Same etcd port as the running cluster, everything else free: etcd cannot start.
    clashing = LocalCluster(
        default_paths(), name="clash", ports=shifted(10000, etcd_client=local.ports.etcd_client)
    )
    with pytest.raises(PortInUseError, match=rf"etcd: port 127.0.0.1:{local.ports.etcd_client}"):
        clashing.up()
    assert clashing.supervisor.procs == []
    assert not (clashing.state_dir / "cluster.json").exists()


def test_a_component_that_fails_to_start_stops_the_ones_already_running(
    local: LocalCluster,
) -> None:
    # The API server port is taken: etcd starts first and must be stopped again.
    clashing = LocalCluster(
        default_paths(), name="clash2", ports=shifted(20000, apiserver=local.ports.apiserver)
    )
    started: list[int] = []
    original = clashing.supervisor.start

    def recording_start(*args, **kwargs):  # type: ignore[no-untyped-def]
        managed = original(*args, **kwargs)
        started.append(managed.pid)
        return managed

    clashing.supervisor.start = recording_start  # type: ignore[method-assign]
    with pytest.raises(PortInUseError, match="kube-apiserver"):
        clashing.up()
    assert started, "etcd should have started before the API server failed"
    assert not any(pid_alive(pid) for pid in started)
