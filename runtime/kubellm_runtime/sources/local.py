"""Mounted sources: file:// paths and pvc://claim/path under the pod's PVC mount root."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from kubellm_runtime.sources.errors import SourceError
from kubellm_runtime.sources.policy import inside


def checked(uri: str, path: Path) -> Path:
    """``path`` if it holds a model or an adapter, else a SourceError naming what is missing."""
    if not path.is_dir():
        raise SourceError(f"{uri}: no such model directory")
    if not (path / "config.json").is_file() and not (path / "adapter_config.json").is_file():
        raise SourceError(f"{uri}: has no config.json or adapter_config.json")
    return path


def local_path(uri: str, pvc_root: Path) -> Path:
    """Where a file:// or pvc:// source (or a bare path) is in this pod, without reading it."""
    split = urlsplit(uri)
    if split.scheme in ("", "file"):
        return Path(split.path if split.scheme else uri)
    if split.scheme == "pvc":
        return pvc_root / split.netloc / split.path.lstrip("/")
    raise SourceError(f"{uri}: not a local source (file:// or pvc://)")


def resolve_local(uri: str, pvc_root: Path) -> Path:
    """file:// paths and pvc://claim/path (mounted under ``pvc_root/claim``), or a bare path.
    A pvc:// source must stay inside its claim, symlinks followed."""
    path = local_path(uri, pvc_root)
    if urlsplit(uri).scheme == "pvc" and not inside(path, pvc_root / urlsplit(uri).netloc):
        raise SourceError(f"{uri}: leads outside its claim (a symlink)")
    return checked(uri, path)
