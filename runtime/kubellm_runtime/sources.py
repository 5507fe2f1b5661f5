"""Resolves model and adapter URIs to local paths before an engine starts."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from huggingface_hub import snapshot_download


class SourceError(Exception):
    """A model or adapter location that cannot be used; the message says why."""


def _checked(uri: str, path: Path) -> Path:
    if not path.is_dir():
        raise SourceError(f"{uri}: no such model directory {path}")
    if not (path / "config.json").is_file() and not (path / "adapter_config.json").is_file():
        raise SourceError(f"{uri}: {path} has no config.json or adapter_config.json")
    return path


def resolve_local(uri: str, pvc_root: Path = Path("/mnt/pvc")) -> Path:
    """file:// paths and pvc://claim/path (mounted under ``pvc_root/claim``), or a bare path."""
    split = urlsplit(uri)
    if split.scheme in ("", "file"):
        return _checked(uri, Path(split.path if split.scheme else uri))
    if split.scheme == "pvc":
        return _checked(uri, pvc_root / split.netloc / split.path.lstrip("/"))
    raise SourceError(f"{uri}: not a local source (file:// or pvc://)")


def from_hub(uri: str, revision: str | None = None, endpoint: str | None = None) -> Path:
    """hf://org/name through the Hugging Face hub client (cached by it, with its file locks)."""
    split = urlsplit(uri)
    repo_id = f"{split.netloc}{split.path}".strip("/")
    try:
        path = snapshot_download(repo_id, revision=revision, endpoint=endpoint, etag_timeout=10)
    except OSError as exc:  # the hub client's "not reachable / not cached" errors are OSErrors
        raise SourceError(
            f"{uri}: the Hugging Face hub is not reachable from here and the model is not in the "
            f"local cache ({type(exc).__name__}); mount the weights and use pvc:// or file://"
        ) from exc
    return _checked(uri, Path(path))


def resolve(uri: str, revision: str | None = None, pvc_root: Path = Path("/mnt/pvc")) -> Path:
    """Any supported source to a local directory, or a SourceError that says why not."""
    scheme = urlsplit(uri).scheme
    if scheme in ("", "file", "pvc"):
        return resolve_local(uri, pvc_root)
    if scheme == "hf":
        return from_hub(uri, revision)
    raise SourceError(
        f"{uri}: {scheme}:// sources are not supported by this runtime build yet; "
        "use file://, pvc:// or hf://"
    )
