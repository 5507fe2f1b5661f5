"""hf:// sources through the Hugging Face hub client (its own cache and file locks)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from huggingface_hub import snapshot_download

from kubellm_runtime.sources.errors import SourceError
from kubellm_runtime.sources.local import checked


def from_hub(uri: str, revision: str | None = None, endpoint: str | None = None) -> Path:
    """hf://org/name, downloaded (or found in the hub client's cache) to a local snapshot."""
    split = urlsplit(uri)
    repo_id = f"{split.netloc}{split.path}".strip("/")
    try:
        path = snapshot_download(repo_id, revision=revision, endpoint=endpoint, etag_timeout=10)
    except OSError as exc:  # the hub client's "not reachable / not cached" errors are OSErrors
        raise SourceError(
            f"{uri}: the Hugging Face hub is not reachable from here and the model is not in the "
            f"local cache ({type(exc).__name__}); mount the weights and use pvc:// or file://"
        ) from exc
    return checked(uri, Path(path))
