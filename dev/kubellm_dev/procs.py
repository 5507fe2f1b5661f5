"""Starts, watches and stops the cluster's processes: each tracked by PID with its own log file."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kubellm_dev.errors import ComponentError, PortInUseError

# Long enough for kube-apiserver's first start on a loaded 2-core machine (it installs its
# bootstrap RBAC and priority classes), short enough that a broken component fails the run fast.
DEFAULT_READY_TIMEOUT = 90.0
STOP_GRACE = 10.0


@dataclass
class Managed:
    """One running component."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def require_ports(component: str, ports: Sequence[int]) -> None:
    for port in ports:
        if not port_free(port):
            raise PortInUseError(component, port)


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class Supervisor:
    """Owns the processes it started and stops all of them, newest first, by process group."""

    log_dir: Path
    procs: list[Managed] = field(default_factory=list)

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        ports: Sequence[int] = (),
        cwd: Path | None = None,
    ) -> Managed:
        require_ports(name, ports)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{name}.log"
        full_env = {**os.environ, **(env or {})}
        with log.open("ab") as out:  # a restart appends: the whole run stays readable
            try:
                popen = subprocess.Popen(
                    list(argv),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=full_env,
                    cwd=cwd,
                    start_new_session=True,  # its own process group: stopped as a whole
                )
            except OSError as exc:
                raise ComponentError(name, f"cannot start {argv[0]}: {exc}", log) from exc
        managed = Managed(name=name, popen=popen, log=log)
        self.procs.append(managed)
        return managed

    def wait_ready(
        self,
        managed: Managed,
        probe: Callable[[], bool],
        *,
        timeout: float = DEFAULT_READY_TIMEOUT,
        what: str = "ready",
    ) -> float:
        """Poll ``probe`` until it is true; fail early if the process exits. Returns seconds."""
        start = time.monotonic()
        deadline = start + timeout
        while True:
            if not managed.alive():
                raise ComponentError(
                    managed.name,
                    f"exited with code {managed.popen.returncode} before it was {what}:\n"
                    f"{tail(managed.log)}",
                    managed.log,
                )
            with contextlib.suppress(OSError):
                if probe():
                    return time.monotonic() - start
            if time.monotonic() > deadline:
                raise ComponentError(
                    managed.name,
                    f"not {what} after {timeout:.0f}s:\n{tail(managed.log)}",
                    managed.log,
                )
            time.sleep(0.2)

    def stop_all(self, grace: float = STOP_GRACE) -> None:
        for managed in reversed(self.procs):
            stop_process_group(managed.pid, grace)
            with contextlib.suppress(subprocess.TimeoutExpired):
                managed.popen.wait(timeout=1)
        self.procs.clear()


def stop_process_group(pid: int, grace: float = STOP_GRACE) -> None:
    """SIGTERM the group led by ``pid`` (a session we started), then SIGKILL what remains."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        # Reap it if it is our child, so it does not linger as a zombie in the group.
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
