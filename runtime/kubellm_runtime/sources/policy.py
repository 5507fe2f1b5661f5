"""Which sources may be read, decided from the URI alone before any I/O.

Every source (the model, the spec's adapters, an adapter a client names) must have a safe
shape: a known scheme, a valid claim, bucket or repository name, and no ``.``/``..`` segment,
backslash, percent-escape or control character, so no path built from it can leave its root.
A source a *client* names must also lie under one of the deployment's allowed prefixes
(``spec.adapterSources``); whether it is refused or missing, the client gets one answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

from kubellm_runtime.sources.errors import SourceError

MAX_URI = 2048
SCHEMES = ("file", "pvc", "hf", "s3", "gs")
_CLAIM = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")  # a Kubernetes object name
_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")  # S3 and GCS bucket names
_REPO = re.compile(r"[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}")  # hub org/name
_UNSAFE = re.compile(r"[\x00-\x1f\x7f\\%?#]")


class SourceNotAvailableError(SourceError):
    """A client-named source that is missing or not allowed: one message for both."""

    def __init__(self, uri: str) -> None:
        super().__init__(
            f"adapter source `{uri}` is not available: it does not exist or this deployment "
            "does not allow it (spec.adapterSources)"
        )


def safe(uri: str, *, bare_paths: bool = False) -> str:
    """``uri`` when its shape is safe, else a SourceError naming the rule it breaks.
    ``bare_paths``: a plain absolute path counts as file:// (local mode's --model)."""
    if len(uri) > MAX_URI:
        raise SourceError(f"source URI longer than {MAX_URI} characters")
    if _UNSAFE.search(uri):
        raise SourceError(
            f"{uri!r}: no backslashes, percent-escapes, '?', '#' or control characters in a "
            "source URI"
        )
    split = urlsplit(uri)
    scheme = split.scheme or ("file" if bare_paths and uri.startswith("/") else "")
    if scheme not in SCHEMES:
        raise SourceError(f"{uri}: unknown scheme (use {', '.join(s + '://' for s in SCHEMES)})")
    where = split.path if split.scheme else uri
    if any(part in (".", "..") for part in where.split("/")):
        raise SourceError(f"{uri}: '.' and '..' segments are not allowed in a source URI")
    name = split.netloc
    if scheme == "pvc" and not _CLAIM.fullmatch(name):
        raise SourceError(f"{uri}: {name!r} is not a valid PersistentVolumeClaim name")
    if scheme in ("s3", "gs") and not _BUCKET.fullmatch(name):
        raise SourceError(f"{uri}: {name!r} is not a valid bucket name")
    if scheme == "hf" and not _REPO.fullmatch(f"{name}{split.path}".rstrip("/")):
        raise SourceError(f"{uri}: a hub source is hf://ORG/NAME")
    if scheme == "file" and split.scheme and name:
        raise SourceError(f"{uri}: a file source is file:///absolute/path (no host)")
    return uri


def allowed(uri: str, prefixes: Iterable[str]) -> bool:
    """Whether ``uri`` is one of ``prefixes`` or lies under one (at a ``/`` boundary)."""
    return any(uri == p.rstrip("/") or uri.startswith(p.rstrip("/") + "/") for p in prefixes)


def client_source(uri: str, prefixes: Iterable[str]) -> str:
    """A source a client named: safe and under an allowed prefix, else the one answer."""
    try:
        safe(uri)
    except SourceError:
        raise SourceNotAvailableError(uri) from None
    if not allowed(uri, prefixes):
        raise SourceNotAvailableError(uri)
    return uri


def inside(path: Path, root: Path) -> bool:
    """Whether ``path`` (symlinks followed) stays under ``root`` (symlinks followed)."""
    return path.resolve().is_relative_to(root.resolve())


def tree_bytes(path: Path, limit: int) -> int:
    """Bytes of the files under ``path``; stops counting once past ``limit``."""
    total = 0
    for file in path.rglob("*"):
        if file.is_file():
            total += file.stat().st_size
            if total > limit:
                break
    return total
