"""Single-file sources (a training dataset): a mounted file, one object-store object, or the
JSON Lines file of a Hugging Face dataset repository, as a local path."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from huggingface_hub import snapshot_download

from kubellm_runtime.settings import RuntimeSettings
from kubellm_runtime.sources.buckets import bucket_for
from kubellm_runtime.sources.cache import download
from kubellm_runtime.sources.errors import SourceError
from kubellm_runtime.sources.local import local_path
from kubellm_runtime.sources.policy import inside, safe
from kubellm_runtime.sources.transfer import transfer_options


def resolve_file(uri: str, settings: RuntimeSettings) -> Path:
    """The local path of the file ``uri`` names, or a SourceError that says why not."""
    safe(uri, bare_paths=True)
    split = urlsplit(uri)
    if split.scheme in ("", "file", "pvc"):
        path = local_path(uri, settings.pvc_root)
        if split.scheme == "pvc" and not inside(path, settings.pvc_root / split.netloc):
            raise SourceError(f"{uri}: leads outside its claim (a symlink)")
        if not path.is_file():
            raise SourceError(f"{uri}: no such file")
        return path
    if split.scheme in ("s3", "gs"):
        return _object(uri, settings)
    return _hub_dataset(uri)


def _object(uri: str, settings: RuntimeSettings) -> Path:
    split = urlsplit(uri)
    key = split.path.lstrip("/")
    if not key or key.endswith("/"):
        raise SourceError(f"{uri}: name an object ({split.scheme}://BUCKET/path/file.jsonl)")
    bucket = bucket_for(
        split.scheme, split.netloc, settings.download_timeout_s, settings.download_concurrency
    )
    matches = [o for o in bucket.list(key) if o.key == key]
    if not matches:
        raise SourceError(f"{uri}: no such object")
    dest = settings.model_cache_dir / split.scheme / split.netloc / PurePosixPath(key)
    dest.parent.mkdir(parents=True, exist_ok=True)
    download(uri, bucket, matches[0], dest, transfer_options(settings))
    return dest


def _hub_dataset(uri: str) -> Path:
    split = urlsplit(uri)
    repo_id = f"{split.netloc}{split.path}".strip("/")
    try:
        folder = Path(
            snapshot_download(
                repo_id, repo_type="dataset", allow_patterns=["*.jsonl"], etag_timeout=10
            )
        )
    except OSError as exc:  # not reachable and not cached
        raise SourceError(
            f"{uri}: the Hugging Face hub is not reachable from here and the dataset is not in "
            f"the local cache ({type(exc).__name__}); use a file://, pvc://, s3:// or gs:// "
            "JSON Lines file"
        ) from exc
    except ValueError as exc:
        raise SourceError(f"{uri}: not a usable hub dataset ({type(exc).__name__})") from exc
    files = sorted(folder.rglob("*.jsonl"))
    if len(files) != 1:
        found = ", ".join(str(f.relative_to(folder)) for f in files) or "none"
        raise SourceError(f"{uri}: needs exactly one .jsonl file (found: {found})")
    return files[0]
