"""Session-wide test settings."""

from __future__ import annotations

import signal
from types import FrameType

import pytest


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    """SIGTERM (CI's time limit, `kill`) tears down like Ctrl-C: fixtures stop the cluster,
    the Ray head and the runtime servers they started instead of leaving them running."""
    signal.signal(signal.SIGTERM, _interrupt)
