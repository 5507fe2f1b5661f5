"""The finished adapter, published whole or not at all, with its metadata.

On a mounted volume (file://, pvc://) the adapter is written to a staging directory beside
its destination and renamed into place: a reader sees nothing or everything. In an object
store (s3://, gs://) every file is uploaded first and ``adapter_config.json`` last: the
runtime loads only a prefix that has it, so a half-uploaded adapter is never picked up.
Whether the destination can be written is checked before training starts.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kubellm_runtime.settings import RuntimeSettings
from kubellm_runtime.sources.buckets import Bucket, bucket_for
from kubellm_runtime.sources.errors import SourceError
from kubellm_runtime.sources.local import local_path
from kubellm_runtime.sources.policy import safe
from kubellm_runtime.train.errors import TrainError

METADATA = "kubellm-adapter.json"
CONFIG = "adapter_config.json"  # what makes a directory an adapter: written last


class Output:
    """Where one run's adapter goes."""

    def __init__(self, uri: str, settings: RuntimeSettings) -> None:
        try:
            safe(uri, bare_paths=True)
        except SourceError as exc:
            raise TrainError("OutputNotWritable", str(exc), field="spec.output.uri") from None
        self.uri = uri.rstrip("/")
        self._split = urlsplit(self.uri)
        self._settings = settings

    @property
    def local(self) -> Path | None:
        """The destination directory when it is on a mounted volume."""
        if self._split.scheme in ("s3", "gs"):
            return None
        return local_path(self.uri, self._settings.pvc_root)

    def check_writable(self) -> None:
        """Write and remove a probe where the adapter goes, or fail naming the location."""
        probe = f".kubellm-probe-{uuid.uuid4().hex[:12]}"
        try:
            if (path := self.local) is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                (path.parent / probe).write_bytes(b"")
                (path.parent / probe).unlink()
                return
            bucket, key = self._bucket(), self._key(probe)
            staged = self._settings.model_cache_dir / probe
            staged.parent.mkdir(parents=True, exist_ok=True)
            staged.write_bytes(b"")
            try:
                bucket.put(key, staged)
                bucket.delete(key)
            finally:
                staged.unlink(missing_ok=True)
        except (OSError, SourceError) as exc:
            raise TrainError(
                "OutputNotWritable",
                f"{self.uri}: cannot be written ({_why(exc)})",
                field="spec.output.uri",
            ) from None

    def published(self) -> dict[str, Any] | None:
        """The metadata of an adapter already published here (a retry after the rename), or
        None."""
        if (path := self.local) is None:
            return None
        try:
            data = json.loads((path / METADATA).read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and (path / CONFIG).is_file() else None

    def publish(self, adapter: Path, metadata: dict[str, Any]) -> None:
        """Put the adapter in ``adapter`` (a directory PEFT wrote) and its metadata in place."""
        (adapter / METADATA).write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
        for file in adapter.rglob("*"):
            file.chmod(0o755 if file.is_dir() else 0o644)  # servers may run as another user
        if (path := self.local) is not None:
            self._rename_into_place(adapter, path)
            return
        bucket = self._bucket()
        files = sorted(p for p in adapter.rglob("*") if p.is_file())
        for file in sorted(files, key=lambda p: p.name == CONFIG):  # the config last
            bucket.put(self._key(str(file.relative_to(adapter))), file)

    def _rename_into_place(self, adapter: Path, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_name(f".{path.name}.staging-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(adapter, staging)
        _sync(staging)
        if path.exists():  # an earlier attempt's copy: replaced whole
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            path.rename(old)
            staging.rename(path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.rename(path)

    def _bucket(self) -> Bucket:
        return bucket_for(self._split.scheme, self._split.netloc, self._settings.download_timeout_s)

    def _key(self, name: str) -> str:
        prefix = self._split.path.strip("/")
        return f"{prefix}/{name}" if prefix else name


def _sync(folder: Path) -> None:
    for file in folder.rglob("*"):
        if file.is_file():
            with file.open("rb") as stream:
                os.fsync(stream.fileno())


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return str(exc)
