"""The one error every source raises."""

from __future__ import annotations


class SourceError(Exception):
    """A model or adapter location that cannot be used; the message says why."""
