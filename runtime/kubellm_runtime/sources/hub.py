"""hf:// sources through the Hugging Face hub client (its own cache and file locks)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from huggingface_hub import snapshot_download

from kubellm_runtime.sources.errors import SourceError
from kubellm_runtime.sources.local import checked


def from_hub(
    uri: str,
    revision: str | None = None,
    endpoint: str | None = None,
    max_bytes: int | None = None,
) -> Path:
    """hf://org/name, downloaded (or found in the hub client's cache) to a local snapshot;
    with ``max_bytes``, the listing is checked first and a bigger repository is refused."""
    split = urlsplit(uri)
    repo_id = f"{split.netloc}{split.path}".strip("/")
    options: dict[str, Any] = {"revision": revision, "endpoint": endpoint, "etag_timeout": 10}
    try:
        if max_bytes is not None:
            listing = snapshot_download(repo_id, dry_run=True, **options)
            size = sum(f.file_size or 0 for f in listing if not isinstance(f, str))
            if size > max_bytes:
                raise SourceError(f"{uri}: {size} bytes, more than the limit of {max_bytes}")
        path = snapshot_download(repo_id, **options)
    except OSError as exc:  # the hub client's "not reachable / not cached" errors are OSErrors
        raise SourceError(
            f"{uri}: the Hugging Face hub is not reachable from here and the model is not in the "
            f"local cache ({type(exc).__name__}); mount the weights and use pvc:// or file://"
        ) from exc
    except ValueError as exc:  # a repository id or revision the hub client refuses
        raise SourceError(f"{uri}: not a usable hub repository ({type(exc).__name__})") from exc
    return checked(uri, Path(str(path)))
