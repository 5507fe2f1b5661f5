"""Object-store prefixes downloaded once into a local cache: resumable, verified, locked.

Layout: ``<root>/<scheme>/<bucket>/<prefix>/`` holds the files; ``.part`` files are downloads
in progress (the next attempt, or the next process, resumes them with a ranged read); a
manifest records each finished file's size and digest; ``<prefix>.lock`` makes replicas that
share the directory (one node, one hostPath) wait for one download instead of repeating it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TypedDict
from urllib.parse import urlsplit

import structlog
from filelock import FileLock, Timeout

from kubellm_runtime.sources.buckets import Bucket, RemoteObject, TransientSourceError
from kubellm_runtime.sources.errors import SourceError
from kubellm_runtime.sources.local import checked
from kubellm_runtime.sources.transfer import TransferOptions, download_all

log = structlog.get_logger(__name__)
MANIFEST = ".kubellm-manifest.json"


class Entry(TypedDict):
    """A finished file in the manifest: what the store said it is."""

    size: int
    digest: list[str] | None


Manifest = dict[str, Entry]


@dataclass(frozen=True)
class Fetched:
    """Where a prefix landed, and how many bytes this call moved over the network."""

    path: Path
    downloaded_bytes: int
    reused_bytes: int


def fetch_prefix(
    uri: str,
    bucket: Bucket,
    root: Path,
    *,
    options: TransferOptions | None = None,
    lock_timeout_s: float = 3600,
    max_bytes: int | None = None,
) -> Fetched:
    """Make ``root`` hold every object under ``uri``'s prefix, downloading only what is missing
    (and nothing at all when the prefix holds more than ``max_bytes``)."""
    split = urlsplit(uri)
    prefix = split.path.lstrip("/").rstrip("/")
    target = root / split.scheme / split.netloc / prefix
    if ".." in PurePosixPath(prefix).parts or not target.resolve().is_relative_to(root.resolve()):
        raise SourceError(f"{uri}: refusing a prefix that leads outside the model cache")
    target.mkdir(parents=True, exist_ok=True)
    lock = FileLock(f"{target}.lock", timeout=lock_timeout_s)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.info("waiting for another download of the same source", uri=uri, lock=lock.lock_file)
        try:
            lock.acquire()
        except Timeout as exc:
            raise SourceError(
                f"{uri}: another process held the download lock {lock.lock_file} "
                f"for over {lock_timeout_s:.0f} s"
            ) from exc
    try:
        return _fetch_locked(
            uri,
            bucket,
            target,
            f"{prefix}/" if prefix else "",
            options=options or TransferOptions(),
            max_bytes=max_bytes,
        )
    finally:
        lock.release()


def _fetch_locked(
    uri: str,
    bucket: Bucket,
    target: Path,
    prefix: str,
    *,
    options: TransferOptions,
    max_bytes: int | None,
) -> Fetched:
    manifest = _read_manifest(target)
    try:
        objects = bucket.list(prefix)
    except TransientSourceError:
        if manifest and all((target / name).is_file() for name in manifest):
            log.warning("object store unreachable; serving the cached copy", uri=uri)
            return Fetched(checked(uri, target), 0, sum(e["size"] for e in manifest.values()))
        raise
    if not objects:
        raise SourceError(f"{uri}: no objects under this prefix")
    total = sum(obj.size for obj in objects)
    if max_bytes is not None and total > max_bytes:
        raise SourceError(f"{uri}: {total} bytes, more than the limit of {max_bytes}")
    log.info("fetching model files", uri=uri, files=len(objects), bytes=total, cache=str(target))
    downloaded = reused = 0
    wanted: list[tuple[RemoteObject, Path]] = []
    entries: dict[str, Entry] = {}
    for obj in objects:
        name = _relative(uri, obj.key, prefix)
        dest = target / name
        entries[obj.key] = Entry(size=obj.size, digest=list(obj.digest) if obj.digest else None)
        same = manifest.get(name) == entries[obj.key]
        if same and dest.is_file() and dest.stat().st_size == obj.size:
            reused += obj.size
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        wanted.append((obj, dest))
    for obj, dest, moved in download_all(uri, bucket, wanted, options):
        downloaded += moved
        name = str(dest.relative_to(target))
        manifest[name] = entries[obj.key]
        _write_manifest(target, manifest)
        log.info("fetched", uri=uri, file=name, bytes=obj.size, moved=moved, of=total)
    return Fetched(checked(uri, target), downloaded, reused)


def _relative(uri: str, key: str, prefix: str) -> str:
    name = PurePosixPath(key[len(prefix) :])
    if name.is_absolute() or ".." in name.parts or name.name in ("", MANIFEST):
        raise SourceError(f"{uri}: refusing object key {key!r} (it would land outside the cache)")
    return str(name)


def download(
    uri: str, bucket: Bucket, obj: RemoteObject, dest: Path, options: TransferOptions
) -> int:
    """Fetch one object into ``dest`` (resumable, verified); returns the bytes moved."""
    return sum(moved for _, _, moved in download_all(uri, bucket, [(obj, dest)], options))


def _read_manifest(target: Path) -> Manifest:
    try:
        data = json.loads((target / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_manifest(target: Path, manifest: Manifest) -> None:
    temporary = target / f"{MANIFEST}.{os.getpid()}"
    temporary.write_text(json.dumps(manifest, sort_keys=True))
    temporary.replace(target / MANIFEST)
