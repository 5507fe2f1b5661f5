"""Loopback-only network namespaces: where the cluster, Ray, vLLM and their tests run."""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import struct
import sys
from collections.abc import Sequence

from kubellm_dev.errors import NetworkNamespaceError

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


def interfaces() -> list[str]:
    """Interfaces of the current network namespace (not /sys, which shows the mount's view)."""
    return sorted(name for _, name in socket.if_nameindex())


def loopback_only() -> bool:
    return interfaces() == ["lo"]


def require_loopback_only(what: str) -> None:
    if not loopback_only():
        raise NetworkNamespaceError(
            f"{what} must run in a loopback-only network namespace (interfaces here: "
            f"{', '.join(interfaces())}); wrap the command: `kubellm-dev netns -- <command>` "
            "or use `make test` / `kubellm-dev cluster up`"
        )


def bring_up_loopback() -> None:
    """A new namespace starts with `lo` down; set IFF_UP on it (what `ip link set lo up` does)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        ifreq = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock, _SIOCGIFFLAGS, ifreq))[1]
        if not flags & _IFF_UP:
            fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | _IFF_UP))


def unshare_argv() -> list[str]:
    """The command prefix that creates a new network namespace for this user."""
    unshare = shutil.which("unshare")
    if unshare is None:
        raise NetworkNamespaceError("`unshare` (util-linux) not found; install util-linux")
    # As root a plain network namespace; otherwise inside a user namespace that maps us to root.
    return [unshare, "-n"] if os.geteuid() == 0 else [unshare, "-rn"]


def exec_in_new_namespace(argv: Sequence[str]) -> None:
    """Replace this process with ``argv`` running in a fresh loopback-only namespace."""
    inner = [sys.executable, "-m", "kubellm_dev", "netns", "--inside", "--", *argv]
    cmd = [*unshare_argv(), *inner]
    os.execv(cmd[0], cmd)


def nsenter_argv(pid: int) -> list[str]:
    """The command prefix that joins the network namespace of a running process."""
    nsenter = shutil.which("nsenter")
    if nsenter is None:
        raise NetworkNamespaceError("`nsenter` (util-linux) not found; install util-linux")
    if os.geteuid() == 0:
        return [nsenter, f"--net=/proc/{pid}/ns/net", "--"]
    return [nsenter, "-t", str(pid), "-U", "-n", "--preserve-credentials", "--"]
