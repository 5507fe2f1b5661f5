"""Mounted sources: file:// paths and pvc://claim/path under the pod's PVC mount root."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from kubellm_runtime.sources.errors import SourceError


def checked(uri: str, path: Path) -> Path:
    """``path`` if it holds a model or an adapter, else a SourceError naming what is missing."""
    if not path.is_dir():
        raise SourceError(f"{uri}: no such model directory {path}")
    if not (path / "config.json").is_file() and not (path / "adapter_config.json").is_file():
        raise SourceError(f"{uri}: {path} has no config.json or adapter_config.json")
    return path


def resolve_local(uri: str, pvc_root: Path) -> Path:
    """file:// paths and pvc://claim/path (mounted under ``pvc_root/claim``), or a bare path."""
    split = urlsplit(uri)
    if split.scheme in ("", "file"):
        return checked(uri, Path(split.path if split.scheme else uri))
    if split.scheme == "pvc":
        return checked(uri, pvc_root / split.netloc / split.path.lstrip("/"))
    raise SourceError(f"{uri}: not a local source (file:// or pvc://)")
