"""Concurrent ranged downloads: pieces in flight together, resume per piece, polite retries."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from kubellm_runtime.sources import SourceError
from kubellm_runtime.sources.buckets import (
    RemoteObject,
    S3Bucket,
    TransientSourceError,
    retry_after,
)
from kubellm_runtime.sources.transfer import TransferOptions, download_all
from tests.unit.runtime.memory_bucket import MemoryBucket

URI = "s3://models/big"
PIECE = 128 << 10
WEIGHTS = hashlib.sha256(b"w").digest() * (PIECE // 32 * 8)  # 1 MiB: 8 pieces
KEY = "big/model.bin"


def remote(store: MemoryBucket, key: str) -> RemoteObject:
    return next(obj for obj in store.list("") if obj.key == key)


def fetch(
    store: MemoryBucket, tmp_path: Path, keys: list[str], options: TransferOptions
) -> dict[str, int]:
    jobs = [(remote(store, key), tmp_path / key.replace("/", "_")) for key in keys]
    return {obj.key: moved for obj, _, moved in download_all(URI, store, jobs, options)}


def first_reads_meet(parties: int) -> tuple[threading.Barrier, object]:
    """A before_read hook: the first ``parties`` reads wait for each other (broken after 30 s,
    which fails the download, if fewer are ever in flight at once)."""
    barrier, seen, lock = threading.Barrier(parties, timeout=30), [0], threading.Lock()

    def hook(key: str, start: int, end: int | None) -> None:
        with lock:
            seen[0] += 1
            mine = seen[0]
        if mine <= parties:
            barrier.wait()

    return barrier, hook


def test_a_large_file_is_read_as_ranged_pieces_in_flight_together(tmp_path: Path) -> None:
    store = MemoryBucket({KEY: WEIGHTS})
    barrier, store.before_read = first_reads_meet(4)  # type: ignore[assignment]
    moved = fetch(store, tmp_path, [KEY], TransferOptions(concurrency=4, piece_bytes=PIECE))
    assert not barrier.broken
    assert (tmp_path / "big_model.bin").read_bytes() == WEIGHTS
    assert sorted(store.ranges) == [(KEY, i, i + PIECE) for i in range(0, len(WEIGHTS), PIECE)]
    assert moved == {KEY: len(WEIGHTS)}
    assert store.served == len(WEIGHTS)
    assert not list(tmp_path.glob("*.part*"))


def test_the_files_of_a_prefix_are_fetched_at_once(tmp_path: Path) -> None:
    store = MemoryBucket({f"big/shard-{i}.bin": WEIGHTS[: 1000 * (i + 1)] for i in range(3)})
    barrier, store.before_read = first_reads_meet(3)  # type: ignore[assignment]
    keys = sorted(store.objects)
    moved = fetch(store, tmp_path, keys, TransferOptions(concurrency=3, piece_bytes=PIECE))
    assert not barrier.broken
    assert moved == {key: len(data) for key, data in store.objects.items()}


def test_a_piece_cut_short_resumes_from_its_own_offset(tmp_path: Path) -> None:
    store = MemoryBucket({KEY: WEIGHTS}, cut=(KEY, 50_000))
    options = TransferOptions(concurrency=4, piece_bytes=PIECE, sleep=lambda _: None)
    fetch(store, tmp_path, [KEY], options)
    assert (tmp_path / "big_model.bin").read_bytes() == WEIGHTS
    resumed = [(s, e) for _, s, e in store.ranges if s % PIECE == 50_000]
    assert len(resumed) == 1
    assert resumed[0][1] == resumed[0][0] - 50_000 + PIECE
    assert store.served == len(WEIGHTS)  # nothing read twice


def test_pieces_a_killed_process_finished_are_not_read_again(tmp_path: Path) -> None:
    dest = tmp_path / "big_model.bin"
    part, record = dest.with_name("big_model.bin.part"), dest.with_name("big_model.bin.part.json")
    left = bytearray(len(WEIGHTS))
    left[0:PIECE] = WEIGHTS[0:PIECE]
    left[2 * PIECE : 3 * PIECE] = WEIGHTS[2 * PIECE : 3 * PIECE]
    left[PIECE : PIECE + 1000] = WEIGHTS[PIECE : PIECE + 1000]
    part.write_bytes(bytes(left))
    written = {"0": PIECE, "1": 1000, "2": PIECE}
    record.write_text(json.dumps({"size": len(WEIGHTS), "piece": PIECE, "written": written}))
    store = MemoryBucket({KEY: WEIGHTS})
    moved = fetch(store, tmp_path, [KEY], TransferOptions(concurrency=2, piece_bytes=PIECE))
    assert dest.read_bytes() == WEIGHTS
    starts = sorted(s for _, s, _ in store.ranges)
    assert starts == [PIECE + 1000] + [i * PIECE for i in range(3, 8)]
    assert moved[KEY] == store.served == len(WEIGHTS) - 2 * PIECE - 1000


def test_a_part_file_whose_record_is_for_other_pieces_starts_over(tmp_path: Path) -> None:
    """A full-size part file with an unusable record is never taken as finished."""
    dest = tmp_path / "big_model.bin"
    dest.with_name("big_model.bin.part").write_bytes(bytes(len(WEIGHTS)))
    dest.with_name("big_model.bin.part.json").write_text('{"size": 1, "piece": 1, "written": {}}')
    store = MemoryBucket({KEY: WEIGHTS})
    fetch(store, tmp_path, [KEY], TransferOptions(piece_bytes=PIECE))
    assert dest.read_bytes() == WEIGHTS
    assert store.served == len(WEIGHTS)


def test_a_store_asking_to_slow_down_is_waited_for_then_backed_off(tmp_path: Path) -> None:
    answers = [TransientSourceError("SlowDown", retry_after_s=7.0), TransientSourceError("reset")]

    def hook(key: str, start: int, end: int | None) -> None:
        if answers:
            raise answers.pop(0)

    store = MemoryBucket({KEY: WEIGHTS[:1000]}, before_read=hook)
    delays: list[float] = []
    options = TransferOptions(concurrency=1, backoff_s=0.5, sleep=delays.append)
    fetch(store, tmp_path, [KEY], options)
    assert delays[0] == 7.0  # the store's Retry-After
    assert 0.5 <= delays[1] <= 1.0  # attempt 2: jittered within [b*2/2, b*2]
    assert (tmp_path / "big_model.bin").read_bytes() == WEIGHTS[:1000]


@pytest.mark.parametrize("attempt", [1, 2, 3, 4, 5, 6])
def test_backoff_grows_with_jitter_up_to_its_cap(attempt: int) -> None:
    options = TransferOptions(backoff_s=1.0, backoff_cap_s=8.0)
    ceiling = min(8.0, 2.0 ** (attempt - 1))
    assert all(ceiling / 2 <= options.delay(attempt, None) <= ceiling for _ in range(50))


def test_a_retry_after_longer_than_the_cap_is_capped() -> None:
    assert TransferOptions(backoff_cap_s=30.0).delay(1, 3600.0) == 30.0


def test_a_piece_that_keeps_failing_gives_up_naming_the_object(tmp_path: Path) -> None:
    def hook(key: str, start: int, end: int | None) -> None:
        raise TransientSourceError("503")

    store = MemoryBucket({KEY: WEIGHTS[:1000]}, before_read=hook)
    delays: list[float] = []
    options = TransferOptions(concurrency=1, attempts=3, sleep=delays.append)
    with pytest.raises(SourceError, match=f"could not download {KEY} in 3 attempts"):
        fetch(store, tmp_path, [KEY], options)
    assert len(delays) == 2  # no wait after the last try


def test_progress_is_logged_with_bytes_and_rate(tmp_path: Path) -> None:
    store = MemoryBucket({KEY: WEIGHTS})
    with capture_logs() as logs:
        fetch(store, tmp_path, [KEY], TransferOptions(piece_bytes=PIECE, progress_interval_s=0))
    progress = [entry for entry in logs if entry["event"] == "download progress"]
    assert progress
    assert progress[-1]["bytes"] == progress[-1]["of"] == len(WEIGHTS)
    assert all(entry["mb_per_s"] >= 0 for entry in progress)


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "5"}, 5.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}, None),
        ({"Retry-After": "-3"}, 0.0),
        ({}, None),
    ],
)
def test_retry_after_is_read_in_seconds(headers: dict[str, str], seconds: float | None) -> None:
    assert retry_after(headers) == seconds


def test_s3_slowdown_is_transient_and_carries_its_retry_after() -> None:
    from botocore.exceptions import ClientError

    bucket = S3Bucket.__new__(S3Bucket)
    bucket.name = "models"
    response = {
        "Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."},
        "ResponseMetadata": {"HTTPStatusCode": 503, "HTTPHeaders": {"retry-after": "2"}},
    }
    with pytest.raises(TransientSourceError, match="SlowDown") as caught, bucket._errors(KEY):
        raise ClientError(response, "GetObject")  # type: ignore[arg-type]
    assert caught.value.retry_after_s == 2.0
