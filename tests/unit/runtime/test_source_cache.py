"""The object-store cache against an in-memory bucket: resume, verify, reuse, lock, refuse."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import BinaryIO

import pytest

from kubellm_runtime.sources import SourceError
from kubellm_runtime.sources.cache import fetch_prefix
from kubellm_runtime.sources.transfer import TransferOptions
from tests.unit.runtime.memory_bucket import MemoryBucket

URI = "s3://models/tiny"
WEIGHTS = bytes(range(256)) * 4096  # 1 MiB


def bucket() -> MemoryBucket:
    return MemoryBucket({"tiny/config.json": b"{}", "tiny/sub/model.bin": WEIGHTS})


def test_a_prefix_lands_in_the_cache_with_its_layout(tmp_path: Path) -> None:
    fetched = fetch_prefix(URI, bucket(), tmp_path)
    assert fetched.path == tmp_path / "s3" / "models" / "tiny"
    assert (fetched.path / "sub" / "model.bin").read_bytes() == WEIGHTS
    assert fetched.downloaded_bytes == len(WEIGHTS) + 2
    assert not list(fetched.path.rglob("*.part"))


def test_a_second_resolve_reuses_the_cache(tmp_path: Path) -> None:
    store = bucket()
    fetch_prefix(URI, store, tmp_path)
    again = fetch_prefix(URI, store, tmp_path)
    assert (again.downloaded_bytes, again.reused_bytes) == (0, len(WEIGHTS) + 2)
    assert store.served == len(WEIGHTS) + 2


def test_a_changed_object_is_downloaded_again(tmp_path: Path) -> None:
    store = bucket()
    fetch_prefix(URI, store, tmp_path)
    store.objects["tiny/config.json"] = b'{"v": 2}'
    again = fetch_prefix(URI, store, tmp_path)
    assert again.downloaded_bytes == len(b'{"v": 2}')
    assert (again.path / "config.json").read_bytes() == b'{"v": 2}'


def test_a_dropped_connection_resumes_from_the_last_byte(tmp_path: Path) -> None:
    store = bucket()
    store.cut = ("tiny/sub/model.bin", 300_000)
    fetched = fetch_prefix(URI, store, tmp_path)
    assert (fetched.path / "sub" / "model.bin").read_bytes() == WEIGHTS
    assert ("tiny/sub/model.bin", 300_000) in store.fetches
    assert store.served == len(WEIGHTS) + 2  # nothing fetched twice


def test_a_partial_file_left_by_a_killed_process_is_resumed(tmp_path: Path) -> None:
    part = tmp_path / "s3" / "models" / "tiny" / "sub" / "model.bin.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(WEIGHTS[:500_000])
    store = bucket()
    fetched = fetch_prefix(URI, store, tmp_path)
    assert ("tiny/sub/model.bin", 500_000) in store.fetches
    assert fetched.downloaded_bytes == len(WEIGHTS) - 500_000 + 2
    assert (fetched.path / "sub" / "model.bin").read_bytes() == WEIGHTS


def test_bytes_that_fail_the_checksum_are_discarded_and_fetched_again(tmp_path: Path) -> None:
    store = bucket()
    store.corrupt_once = True
    fetched = fetch_prefix(URI, store, tmp_path)
    assert (fetched.path / "config.json").read_bytes() == b"{}"
    assert (fetched.path / "sub" / "model.bin").read_bytes() == WEIGHTS


def test_a_source_that_never_verifies_fails_with_the_reason(tmp_path: Path) -> None:
    store = bucket()
    store.objects["tiny/sub/model.bin"] = WEIGHTS
    original = store.fetch

    def always_corrupt(key: str, start: int, sink: BinaryIO, end: int | None = None) -> None:
        store.corrupt_once = True
        original(key, start, sink, end)

    store.fetch = always_corrupt  # type: ignore[method-assign]
    with pytest.raises(SourceError, match=r"could not download tiny/config.json in 2 attempts"):
        fetch_prefix(URI, store, tmp_path, options=TransferOptions(attempts=2))


def test_an_unreachable_store_serves_a_complete_cache(tmp_path: Path) -> None:
    store = bucket()
    fetch_prefix(URI, store, tmp_path)
    store.unreachable = True
    assert fetch_prefix(URI, store, tmp_path).reused_bytes == len(WEIGHTS) + 2


def test_an_unreachable_store_without_a_cache_fails(tmp_path: Path) -> None:
    store = bucket()
    store.unreachable = True
    with pytest.raises(SourceError, match="connection refused"):
        fetch_prefix(URI, store, tmp_path)


@pytest.mark.parametrize(
    ("objects", "fragment"),
    [
        ({}, "no objects under this prefix"),
        ({"tiny/../../etc/passwd": b"x"}, "refusing object key"),
        ({"tiny/weights.bin": b"x"}, "has no config.json"),
    ],
)
def test_unusable_prefixes_are_refused(
    tmp_path: Path, objects: dict[str, bytes], fragment: str
) -> None:
    with pytest.raises(SourceError, match=fragment):
        fetch_prefix(URI, MemoryBucket(objects), tmp_path)


def test_concurrent_resolvers_download_once(tmp_path: Path) -> None:
    store = bucket()
    results = []

    def run() -> None:
        results.append(fetch_prefix(URI, store, tmp_path))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == 4
    assert sum(r.downloaded_bytes for r in results) == len(WEIGHTS) + 2
    assert store.served == len(WEIGHTS) + 2


def test_a_held_lock_times_out_with_its_path(tmp_path: Path) -> None:
    from filelock import FileLock

    target = tmp_path / "s3" / "models" / "tiny"
    target.mkdir(parents=True)
    with FileLock(f"{target}.lock"), pytest.raises(SourceError, match="download lock"):
        # another FileLock object on the same path, as a second process would hold
        fetch_prefix(URI, bucket(), tmp_path, lock_timeout_s=0.2)
