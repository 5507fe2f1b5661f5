"""Object-store prefixes downloaded once into a local cache: resumable, verified, locked.

Layout: ``<root>/<scheme>/<bucket>/<prefix>/`` holds the files; ``.part`` files are downloads
in progress (the next attempt, or the next process, resumes them with a ranged read); a
manifest records each finished file's size and digest; ``<prefix>.lock`` makes replicas that
share the directory (one node, one hostPath) wait for one download instead of repeating it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TypedDict
from urllib.parse import urlsplit

import google_crc32c
import structlog
from filelock import FileLock, Timeout

from kubellm_runtime.sources.buckets import Bucket, RemoteObject, TransientSourceError
from kubellm_runtime.sources.errors import SourceError
from kubellm_runtime.sources.local import checked

log = structlog.get_logger(__name__)
MANIFEST = ".kubellm-manifest.json"
_READ = 1 << 20


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
    attempts: int = 5,
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
            attempts=attempts,
            max_bytes=max_bytes,
        )
    finally:
        lock.release()


def _fetch_locked(
    uri: str, bucket: Bucket, target: Path, prefix: str, *, attempts: int, max_bytes: int | None
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
    for obj in objects:
        name = _relative(uri, obj.key, prefix)
        dest = target / name
        entry = Entry(size=obj.size, digest=list(obj.digest) if obj.digest else None)
        if manifest.get(name) == entry and dest.is_file() and dest.stat().st_size == obj.size:
            reused += obj.size
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        downloaded += download(uri, bucket, obj, dest, attempts)
        manifest[name] = entry
        _write_manifest(target, manifest)
        log.info("fetched", uri=uri, file=name, bytes=obj.size, done=downloaded + reused, of=total)
    return Fetched(checked(uri, target), downloaded, reused)


def _relative(uri: str, key: str, prefix: str) -> str:
    name = PurePosixPath(key[len(prefix) :])
    if name.is_absolute() or ".." in name.parts or name.name in ("", MANIFEST):
        raise SourceError(f"{uri}: refusing object key {key!r} (it would land outside the cache)")
    return str(name)


def download(uri: str, bucket: Bucket, obj: RemoteObject, dest: Path, attempts: int) -> int:
    """Fetch ``obj`` into ``dest`` through ``dest.part``; returns the bytes moved."""
    part = dest.with_name(dest.name + ".part")
    moved = 0
    for attempt in range(1, attempts + 1):
        start = part.stat().st_size if part.exists() else 0
        if start > obj.size:
            part.unlink()
            start = 0
        if start:
            log.info("resuming download", uri=uri, key=obj.key, offset=start, size=obj.size)
        try:
            with part.open("ab") as sink:
                if start < obj.size:
                    bucket.fetch(obj.key, start, sink)
        except TransientSourceError as exc:
            log.warning(
                "download interrupted", uri=uri, key=obj.key, attempt=attempt, error=str(exc)
            )
            continue
        finally:
            moved += (part.stat().st_size if part.exists() else 0) - start
        problem = _verify(part, obj)
        if problem is None:
            part.replace(dest)
            return moved
        log.warning("downloaded file failed verification", uri=uri, key=obj.key, problem=problem)
        part.unlink()
    raise SourceError(f"{uri}: could not download {obj.key} in {attempts} attempts")


def _verify(path: Path, obj: RemoteObject) -> str | None:
    size = path.stat().st_size
    if size != obj.size:
        return f"size {size} != {obj.size}"
    if obj.digest is None:
        return None
    kind, expected = obj.digest
    md5, crc = hashlib.md5(usedforsecurity=False), google_crc32c.Checksum()
    hasher = md5 if kind == "md5" else crc
    with path.open("rb") as stream:
        while block := stream.read(_READ):
            hasher.update(block)
    actual = md5.hexdigest() if kind == "md5" else base64.b64encode(crc.digest()).decode()
    return None if actual == expected else f"{kind} {actual} != {expected}"


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
