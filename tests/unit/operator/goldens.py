"""Shared by the builder tests: golden files and key-order shuffling."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

GOLDEN = Path(__file__).parent / "golden"


def assert_golden(name: str, rendered: str) -> None:
    """``rendered`` equals the checked-in golden file (KUBELLM_UPDATE_GOLDEN=1 rewrites it)."""
    golden = GOLDEN / name
    if os.environ.get("KUBELLM_UPDATE_GOLDEN") == "1":
        golden.write_text(rendered)
    assert golden.is_file(), f"missing {golden}: run with KUBELLM_UPDATE_GOLDEN=1"
    assert rendered == golden.read_text()


def shuffled(value: Any, rng: random.Random) -> Any:
    """The same document with every mapping's keys in a random order."""
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: shuffled(v, rng) for k, v in items}
    if isinstance(value, list):
        return [shuffled(v, rng) for v in value]
    return value
