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

__all__ = ["SourceError", "resolve"]


def resolve(uri: str, revision: str | None = None, settings: RuntimeSettings | None = None) -> Path:
    """Any supported source to a local directory, or a SourceError that says why not."""
    settings = settings or RuntimeSettings()
    split = urlsplit(uri)
    if split.scheme in ("", "file", "pvc"):
        return resolve_local(uri, settings.pvc_root)
    if split.scheme == "hf":
        return from_hub(uri, revision)
    if split.scheme in ("s3", "gs"):
        if not split.netloc:
            raise SourceError(f"{uri}: no bucket named ({split.scheme}://BUCKET/PREFIX)")
        bucket = bucket_for(split.scheme, split.netloc, settings.download_timeout_s)
        return fetch_prefix(
            uri,
            bucket,
            settings.model_cache_dir,
            attempts=settings.download_attempts,
            lock_timeout_s=settings.download_lock_timeout_s,
        ).path
    raise SourceError(f"{uri}: unknown scheme {split.scheme}:// (use file, pvc, hf, s3 or gs)")
