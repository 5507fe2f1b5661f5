"""An object store in a dict, safe to read from many threads, with scripted failures."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

from kubellm_runtime.sources.buckets import RemoteObject, TransientSourceError


@dataclass
class MemoryBucket:
    """Objects in a dict. ``cut`` = (key, n) drops that key's connection after n bytes, once;
    ``corrupt_once`` zeroes the next read; ``before_read`` runs at the start of every read
    (a test's barrier or scripted error)."""

    objects: dict[str, bytes]
    cut: tuple[str, int] | None = None
    corrupt_once: bool = False
    unreachable: bool = False
    before_read: Callable[[str, int, int | None], None] | None = None
    served: int = 0
    fetches: list[tuple[str, int]] = field(default_factory=list)
    ranges: list[tuple[str, int, int | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def list(self, prefix: str) -> list[RemoteObject]:
        if self.unreachable:
            raise TransientSourceError("connection refused")
        return [
            RemoteObject(key, len(data), ("md5", hashlib.md5(data).hexdigest()))
            for key, data in sorted(self.objects.items())
            if key.startswith(prefix)
        ]

    def fetch(self, key: str, start: int, sink: BinaryIO, end: int | None = None) -> None:
        with self.lock:
            self.fetches.append((key, start))
            self.ranges.append((key, start, end))
        if self.before_read is not None:
            self.before_read(key, start, end)
        data = self.objects[key][start:end]
        with self.lock:
            if self.corrupt_once:
                self.corrupt_once = False
                data = bytes(len(data))
            cut, self.cut = (
                (self.cut, None) if self.cut and self.cut[0] == key else (None, self.cut)
            )
        if cut is not None:
            sink.write(data[: cut[1]])
            self._count(min(len(data), cut[1]))
            raise TransientSourceError("connection reset")
        sink.write(data)
        self._count(len(data))

    def _count(self, count: int) -> None:
        with self.lock:
            self.served += count
