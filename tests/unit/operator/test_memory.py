"""The operator caps glibc's malloc arenas before any thread starts."""

from __future__ import annotations

import platform
import subprocess
import sys
from typing import Any

import pytest

from kubellm_operator import __main__ as entry
from kubellm_operator.memory import limit_malloc_arenas

GLIBC = platform.libc_ver()[0] == "glibc"

# Eight threads that each allocate while the others hold arenas: how many arenas glibc made,
# counted by malloc_info's <heap nr=...> entries.
PROBE = """
import ctypes, ctypes.util, os, sys, threading, tempfile
from kubellm_operator.memory import limit_malloc_arenas
if sys.argv[1] == "limit":
    limit_malloc_arenas(2)
go = threading.Barrier(8)
def churn():
    go.wait()
    for _ in range(2000):
        [bytearray(512) for _ in range(50)]
threads = [threading.Thread(target=churn) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.fdopen.restype = ctypes.c_void_p
libc.fdopen.argtypes = (ctypes.c_int, ctypes.c_char_p)
libc.malloc_info.argtypes = (ctypes.c_int, ctypes.c_void_p)
libc.fclose.argtypes = (ctypes.c_void_p,)
with tempfile.TemporaryFile("w+") as f:
    stream = libc.fdopen(os.dup(f.fileno()), b"w")
    libc.malloc_info(0, stream)
    libc.fclose(stream)
    f.seek(0)
    print(f.read().count("<heap nr="))
"""


def arenas(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True
    )
    return int(done.stdout.strip())


@pytest.mark.skipif(not GLIBC, reason="mallopt(M_ARENA_MAX) is glibc's")
def test_threads_share_two_arenas_once_limited() -> None:
    assert arenas("default") > 2  # the probe does make glibc grow arenas per thread
    assert arenas("limit") <= 2


@pytest.mark.skipif(not GLIBC, reason="mallopt(M_ARENA_MAX) is glibc's")
def test_the_environment_variable_of_glibc_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False


def test_main_limits_arenas_before_kopf_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    order: list[str] = []
    monkeypatch.setattr(entry, "limit_malloc_arenas", lambda: order.append("arenas") or True)
    monkeypatch.setattr(entry.kopf, "configure", lambda **_: None)

    def run(**_: Any) -> None:
        order.append("kopf")

    monkeypatch.setattr(entry.kopf, "run", run)
    entry.main(["kubellm_operator", "--standalone"])
    assert order == ["arenas", "kopf"]
