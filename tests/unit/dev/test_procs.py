"""The supervisor names the failing component and its log, and leaves nothing running."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from kubellm_dev.cluster import pid_alive
from kubellm_dev.errors import ComponentError, PortInUseError
from kubellm_dev.procs import Supervisor


def test_a_component_that_exits_early_is_reported_with_its_log(tmp_path: Path) -> None:
    sup = Supervisor(tmp_path)
    proc = sup.start("flaky", [sys.executable, "-c", "print('bad flag --x'); raise SystemExit(3)"])
    with pytest.raises(ComponentError) as failed:
        sup.wait_ready(proc, lambda: False, timeout=30)
    message = str(failed.value)
    assert "flaky: exited with code 3" in message
    assert "bad flag --x" in message
    assert str(tmp_path / "flaky.log") in message


def test_a_component_that_never_becomes_ready_times_out_by_name(tmp_path: Path) -> None:
    sup = Supervisor(tmp_path)
    proc = sup.start("sleepy", [sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with pytest.raises(ComponentError, match=r"sleepy: not ready after 1s"):
            sup.wait_ready(proc, lambda: False, timeout=1)
    finally:
        sup.stop_all()
    assert not pid_alive(proc.pid) or proc.popen.poll() is not None


def test_a_taken_port_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        sup = Supervisor(tmp_path)
        with pytest.raises(PortInUseError, match=rf"etcd: port 127.0.0.1:{port} is already in use"):
            sup.start("etcd", [sys.executable, "-c", "pass"], ports=[port])
    assert sup.procs == []


def test_stop_all_ends_children_of_components_too(tmp_path: Path) -> None:
    sup = Supervisor(tmp_path)
    pid_file = tmp_path / "child.pid"
    script = (
        "import subprocess, sys, time;"
        f"c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
        f"open({str(pid_file)!r}, 'w').write(str(c.pid)); time.sleep(60)"
    )
    proc = sup.start("parent", [sys.executable, "-c", script])
    sup.wait_ready(proc, pid_file.exists, timeout=30)
    child = int(pid_file.read_text())

    sup.stop_all()

    assert proc.popen.poll() is not None
    assert not pid_alive(child)


def test_a_missing_go_toolchain_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from kubellm_dev.build import check_go

    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ComponentError, match=r"go toolchain: `go` not found on PATH"):
        check_go()
