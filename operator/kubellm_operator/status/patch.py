"""How a derived status is written: one merge patch and one test for change, for every kind.

A kind's status may have fields another writer owns (a FineTuneJob's trainer writes its
progress and the adapter's location): the operator's patch leaves those out, and sets to null
only the fields it owns that the new status no longer has.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def merge_patch(
    wire: Mapping[str, Any], *, clear: Iterable[str] = (), skip: Iterable[str] = ()
) -> dict[str, Any]:
    """The status ``wire`` as a JSON merge patch: each field in ``clear`` the new status lacks
    is set to null (deleted), each field in ``skip`` is left to its other writer."""
    patch: dict[str, Any] = dict.fromkeys(clear)
    patch.update(wire)
    for name in skip:
        patch.pop(name, None)
    return patch


def changed(patch: Mapping[str, Any], before: Mapping[str, Any]) -> bool:
    """Whether writing ``patch`` would change the status ``before``."""
    return any(before.get(name) != value for name, value in patch.items())
