"""Kubernetes resource quantities as Ray counts them."""

from __future__ import annotations

import math

_SUFFIX = {"m": 1e-3, "": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}
_SUFFIX |= {f"{p}i": 1024.0 ** (n + 1) for n, p in enumerate("KMGTPE")}


def whole_cores(quantity: str) -> int:
    """Whole CPU cores in a Kubernetes quantity ("8", "2.5", "500m"), at least one."""
    number = quantity.rstrip("mkMGTPEi")
    return max(1, math.floor(float(number) * _SUFFIX[quantity[len(number) :]]))
