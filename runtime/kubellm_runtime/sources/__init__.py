"""Model and adapter URIs (DESIGN §3) resolved to a local directory before an engine starts."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from kubellm_runtime.settings import RuntimeSettings
from kubellm_runtime.sources.buckets import bucket_for
from kubellm_runtime.sources.cache import fetch_prefix
from kubellm_runtime.sources.errors import SourceError
from kubellm_runtime.sources.hub import from_hub
from kubellm_runtime.sources.local import resolve_local
from kubellm_runtime.sources.policy import safe, tree_bytes
from kubellm_runtime.sources.transfer import transfer_options

__all__ = ["SourceError", "resolve"]


def resolve(
    uri: str,
    revision: str | None = None,
    settings: RuntimeSettings | None = None,
    *,
    max_bytes: int | None = None,
) -> Path:
    """Any supported source to a local directory, or a SourceError that says why not.

    The URI's shape is checked before any I/O (no path built from it leaves its root);
    ``max_bytes`` refuses a bigger source before it is downloaded (or, mounted, before use).
    """
    settings = settings or RuntimeSettings()
    safe(uri, bare_paths=True)
    split = urlsplit(uri)
    if split.scheme in ("", "file", "pvc"):
        path = resolve_local(uri, settings.pvc_root)
        if max_bytes is not None and (size := tree_bytes(path, max_bytes)) > max_bytes:
            raise SourceError(f"{uri}: more than the limit of {max_bytes} bytes ({size}+)")
        return path
    if split.scheme == "hf":
        return from_hub(uri, revision, max_bytes=max_bytes)
    if split.scheme in ("s3", "gs"):
        if not split.netloc:
            raise SourceError(f"{uri}: no bucket named ({split.scheme}://BUCKET/PREFIX)")
        bucket = bucket_for(
            split.scheme, split.netloc, settings.download_timeout_s, settings.download_concurrency
        )
        return fetch_prefix(
            uri,
            bucket,
            settings.model_cache_dir,
            options=transfer_options(settings),
            lock_timeout_s=settings.download_lock_timeout_s,
            max_bytes=max_bytes,
        ).path
    raise SourceError(f"{uri}: unknown scheme {split.scheme}:// (use file, pvc, hf, s3 or gs)")
