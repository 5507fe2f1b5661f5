"""Permission to use Intel AMX, asked for before vLLM starts its engine processes.

Linux hands out AMX's tile state only to a process that asked for it (``arch_prctl`` with
``ARCH_REQ_XCOMP_PERM``); a process that runs an AMX instruction without it is killed with
SIGILL. vLLM-CPU picks its AMX attention kernel for bfloat16 on CPUs that have AMX, but does
not ask: its worker died with SIGILL in ``cpu_attention_with_kv_cache`` whenever nothing else
in the process (oneDNN) had asked first. vLLM starts its engine core and workers as new
interpreters, which do not inherit the permission, so this runs in each of them as a vLLM
general plugin (the ``vllm.general_plugins`` entry point in pyproject.toml), and in the
serving process before the engine starts. Asking is harmless where AMX is absent (the call
fails and nothing uses AMX) and is skipped off Linux x86_64.
"""

from __future__ import annotations

import ctypes
import platform
import sys

_SYS_ARCH_PRCTL = 158  # x86_64
_ARCH_REQ_XCOMP_PERM = 0x1023
_XFEATURE_XTILEDATA = 18


def allow_amx() -> bool:
    """Ask for AMX tile data for this process (and its children); whether it was granted."""
    if sys.platform != "linux" or platform.machine() != "x86_64":
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.syscall(_SYS_ARCH_PRCTL, _ARCH_REQ_XCOMP_PERM, _XFEATURE_XTILEDATA)) == 0
    except (OSError, AttributeError):
        return False
