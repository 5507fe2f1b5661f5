"""The operator process's malloc: two arenas instead of one per thread.

glibc gives a thread that allocates while another holds the main arena an arena of its own,
up to eight per core, and each keeps the memory freed into it. The operator's reconciles run
in asyncio's thread pool, beside the Event poster and the metrics server, so a busy operator
grows an arena per thread that stays full of freed watch bodies. Two arenas are plenty for
threads that mostly wait on the API server, and keep RSS down at 1,000 objects (see
docs/benchmarks.md, Operator). ``MALLOC_ARENA_MAX`` in the environment, glibc's own knob, wins.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_ARENA_MAX = -8  # glibc's mallopt parameter (malloc.h)
ARENAS = 2


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Cap this process's malloc arenas (call it before threads start); whether it was set.

    False where the C library is not glibc, or where ``MALLOC_ARENA_MAX`` already decides.
    """
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_ARENA_MAX, arenas))
