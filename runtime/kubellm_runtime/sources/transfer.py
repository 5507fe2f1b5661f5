"""Concurrent, resumable, verified object downloads: ranged reads of every file at once.

Each object is cut into pieces of ``piece_bytes``; a pool of ``concurrency`` threads fetches
the pieces of all objects at once with ranged reads, each into its place in ``<dest>.part``.
``<dest>.part.json`` records how far each piece got, so the next attempt (or the next process)
resumes every piece where it stopped; a ``.part`` without it is a contiguous prefix (one
stream's progress). A piece that fails with a transient error is retried with jittered
exponential backoff, or after the store's Retry-After when it sends one (S3's SlowDown, GCS's
429). Once every piece is in, the whole file is checked against the store's digest before it
takes its name; a file that fails the check is fetched again from scratch.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import structlog

from kubellm_runtime.sources.buckets import Bucket, RemoteObject, TransientSourceError
from kubellm_runtime.sources.errors import SourceError
from kubellm_runtime.sources.verify import problem_with

if TYPE_CHECKING:
    from kubellm_runtime.settings import RuntimeSettings

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class TransferOptions:
    concurrency: int = 16
    """Ranged reads in flight at once, over all files."""
    piece_bytes: int = 64 << 20
    attempts: int = 5
    """Tries per piece (transient errors), and per file (failed verification)."""
    backoff_s: float = 0.5
    backoff_cap_s: float = 30.0
    progress_interval_s: float = 5.0
    sleep: Callable[[float], None] = time.sleep

    def delay(self, attempt: int, retry_after_s: float | None) -> float:
        """Before try ``attempt + 1``: the store's Retry-After, else jittered exponential."""
        if retry_after_s is not None:
            return min(retry_after_s, self.backoff_cap_s)
        ceiling = min(self.backoff_cap_s, self.backoff_s * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not secrecy


class _Counting:
    """A sink that counts what it writes (what a broken read still delivered)."""

    def __init__(self, inner: BinaryIO) -> None:
        self.inner, self.count = inner, 0

    def write(self, data: bytes) -> int:
        written = self.inner.write(data)
        self.count += written
        return written


@dataclass
class _File:
    """One object on its way to ``dest``: its pieces and how far each got."""

    obj: RemoteObject
    dest: Path
    piece_bytes: int
    written: dict[int, int] = field(default_factory=dict)
    moved: int = 0
    tries: int = 1
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def part(self) -> Path:
        return self.dest.with_name(self.dest.name + ".part")

    @property
    def state(self) -> Path:
        return self.dest.with_name(self.dest.name + ".part.json")

    def pieces(self) -> list[tuple[int, int]]:
        size, step = self.obj.size, self.piece_bytes
        return [(start, min(start + step, size)) for start in range(0, size, step)]

    def open(self) -> None:
        """Pick up what an earlier attempt left, or start an empty (sparse) part file.

        The record is written before the part file grows to full size, so a full-size part
        file is never mistaken for one stream's finished prefix."""
        self.written = self._left_over()
        if not self.written:
            self.part.unlink(missing_ok=True)
        self.save()
        with self.part.open("ab") as sink:
            sink.truncate(self.obj.size)

    def _left_over(self) -> dict[int, int]:
        if not self.part.exists():
            return {}
        if not self.state.exists():
            # No record: the part file is one stream's contiguous prefix (an earlier version).
            have = min(self.part.stat().st_size, self.obj.size)
            pieces = enumerate(self.pieces())
            return {i: max(0, min(end, have) - start) for i, (start, end) in pieces}
        try:
            saved = json.loads(self.state.read_text())
            if saved["size"] == self.obj.size and saved["piece"] == self.piece_bytes:
                return {int(i): int(n) for i, n in saved["written"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
        return {}  # a record for other pieces, or unreadable: what is in the file is unknown

    def save(self) -> None:
        with self.lock:
            record = {"size": self.obj.size, "piece": self.piece_bytes, "written": self.written}
            scratch = self.state.with_suffix(f".{threading.get_ident()}")
            scratch.write_text(json.dumps(record))
            scratch.replace(self.state)

    def todo(self) -> list[int]:
        return [
            i
            for i, (start, end) in enumerate(self.pieces())
            if self.written.get(i, 0) < end - start
        ]

    def add(self, index: int, count: int) -> None:
        with self.lock:
            self.written[index] = self.written.get(index, 0) + count
            self.moved += count

    def reset(self) -> None:
        self.part.unlink(missing_ok=True)
        self.state.unlink(missing_ok=True)
        self.tries += 1
        self.open()

    def finish(self) -> None:
        self.part.replace(self.dest)
        self.state.unlink(missing_ok=True)


class _Progress:
    def __init__(self, uri: str, total: int, interval_s: float) -> None:
        self.uri, self.total, self.interval_s = uri, total, interval_s
        self.done = 0
        self.started = self.last = time.monotonic()
        self.lock = threading.Lock()

    def add(self, count: int) -> None:
        with self.lock:
            self.done += count
            now = time.monotonic()
            if now - self.last < self.interval_s:
                return
            self.last = now
        rate = self.done / max(now - self.started, 1e-9)
        log.info(
            "download progress",
            uri=self.uri,
            bytes=self.done,
            of=self.total,
            mb_per_s=round(rate / 1e6, 1),
        )


@dataclass(frozen=True)
class _Run:
    """One download_all call: where from, how, and the progress it logs."""

    uri: str
    bucket: Bucket
    options: TransferOptions
    progress: _Progress

    def gave_up(self, file: _File) -> SourceError:
        attempts = self.options.attempts
        return SourceError(f"{self.uri}: could not download {file.obj.key} in {attempts} attempts")

    def piece(self, file: _File, index: int) -> None:
        """Fetch one piece to its end, resuming and backing off between tries."""
        start, end = file.pieces()[index]
        for attempt in range(1, self.options.attempts + 1):
            offset = start + file.written.get(index, 0)
            if offset >= end:
                return
            try:
                self._read(file, index, offset, end)
            except TransientSourceError as exc:
                log.warning(
                    "download interrupted",
                    uri=self.uri,
                    key=file.obj.key,
                    offset=offset,
                    attempt=attempt,
                    error=str(exc),
                )
                if attempt < self.options.attempts:
                    self.options.sleep(self.options.delay(attempt, exc.retry_after_s))
        if file.written.get(index, 0) < end - start:
            raise self.gave_up(file)

    def _read(self, file: _File, index: int, offset: int, end: int) -> None:
        sink: _Counting | None = None
        try:
            with file.part.open("r+b") as handle:
                handle.seek(offset)
                sink = _Counting(handle)
                self.bucket.fetch(file.obj.key, offset, sink, end)  # type: ignore[arg-type]
        finally:
            count = sink.count if sink is not None else 0
            file.add(index, count)
            self.progress.add(count)
        if offset + count < end:  # the store closed the body early without an error
            raise TransientSourceError(f"{self.uri}: {file.obj.key} ended early at {offset}")


def download_all(
    uri: str,
    bucket: Bucket,
    jobs: list[tuple[RemoteObject, Path]],
    options: TransferOptions,
) -> Iterator[tuple[RemoteObject, Path, int]]:
    """Fetch every (object, destination) at once; yields each object once it is verified and
    in place, with the bytes moved for it."""
    files = [_File(obj, dest, options.piece_bytes) for obj, dest in jobs]
    progress = _Progress(uri, sum(f.obj.size for f in files), options.progress_interval_s)
    run = _Run(uri, bucket, options, progress)
    with ThreadPoolExecutor(options.concurrency, thread_name_prefix="download") as pool:
        pending: dict[Future[None], _File] = {}

        def submit(file: _File) -> None:
            for index in file.todo():
                future = pool.submit(run.piece, file, index)
                pending[future] = file

        for file in files:
            file.open()
            if file.todo():
                submit(file)
            else:  # empty, or every piece already in from an earlier run
                yield from _landed(run, file, submit)
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    file = pending.pop(future)
                    future.result()  # a piece out of attempts ends the whole download
                    file.save()
                    if not any(f is file for f in pending.values()):
                        yield from _landed(run, file, submit)
        finally:
            for future in pending:
                future.cancel()


def _landed(
    run: _Run, file: _File, submit: Callable[[_File], None]
) -> Iterator[tuple[RemoteObject, Path, int]]:
    """All pieces are in: verify and rename, or start that file again."""
    if file.todo():
        return
    problem = problem_with(file.part, file.obj)
    if problem is None:
        file.finish()
        yield file.obj, file.dest, file.moved
        return
    log.warning(
        "downloaded file failed verification", uri=run.uri, key=file.obj.key, problem=problem
    )
    if file.tries >= run.options.attempts:
        file.reset()
        raise run.gave_up(file)
    file.reset()
    submit(file)
    if not file.todo():
        yield from _landed(run, file, submit)


def transfer_options(settings: RuntimeSettings) -> TransferOptions:
    return TransferOptions(
        concurrency=settings.download_concurrency,
        piece_bytes=settings.download_piece_mib << 20,
        attempts=settings.download_attempts,
    )
