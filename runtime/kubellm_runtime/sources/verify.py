"""A downloaded file against what its store says it is: size, and MD5 or CRC32C."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import google_crc32c

from kubellm_runtime.sources.buckets import RemoteObject

_READ = 1 << 20


def problem_with(path: Path, obj: RemoteObject) -> str | None:
    """Why ``path`` is not ``obj``'s bytes, or None when it is."""
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
