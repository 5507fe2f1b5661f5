"""Resolves model and adapter URIs to local paths before an engine starts."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit


class SourceError(Exception):
    """A model or adapter location that cannot be used; the message says why."""


def resolve_local(uri: str, pvc_root: Path = Path("/mnt/pvc")) -> Path:
    """file:// paths and pvc://claim/path (mounted under ``pvc_root/claim``), or a bare path."""
    split = urlsplit(uri)
    if split.scheme in ("", "file"):
        path = Path(split.path if split.scheme else uri)
    elif split.scheme == "pvc":
        path = pvc_root / split.netloc / split.path.lstrip("/")
    else:
        raise SourceError(
            f"{uri}: {split.scheme}:// sources are not supported by this runtime build yet; "
            "use file:// or pvc://"
        )
    if not path.is_dir():
        raise SourceError(f"{uri}: no such model directory {path}")
    if not (path / "config.json").is_file() and not (path / "adapter_config.json").is_file():
        raise SourceError(f"{uri}: {path} has no config.json or adapter_config.json")
    return path
