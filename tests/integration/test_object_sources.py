"""s3:// and gs:// sources against real S3 and GCS protocol servers on loopback."""

from __future__ import annotations

import filecmp
import multiprocessing
import random
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from structlog.testing import capture_logs

from kubellm_dev.object_stores import ObjectStores
from kubellm_runtime.settings import RuntimeSettings
from kubellm_runtime.sources import SourceError, resolve
from kubellm_runtime.sources.buckets import bucket_for
from kubellm_runtime.sources.cache import fetch_prefix

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def uploaded(stores: ObjectStores, tiny_model_dir: Path) -> Path:
    stores.upload(tiny_model_dir, "tiny")
    return tiny_model_dir


def same_tree(a: Path, b: Path) -> bool:
    files = sorted(str(p.relative_to(a)) for p in a.rglob("*") if p.is_file())
    match, mismatch, errors = filecmp.cmpfiles(a, b, files, shallow=False)
    return not mismatch and not errors and len(match) == len(files) > 0


@pytest.mark.parametrize("scheme", ["s3", "gs"])
def test_a_model_is_downloaded_into_the_cache(uploaded: Path, tmp_path: Path, scheme: str) -> None:
    path = resolve(f"{scheme}://models/tiny", settings=RuntimeSettings(model_cache_dir=tmp_path))
    assert path == tmp_path / scheme / "models" / "tiny"
    assert same_tree(uploaded, path)


@pytest.mark.parametrize("scheme", ["s3", "gs"])
def test_a_model_is_downloaded_in_concurrent_ranged_pieces(
    stores: ObjectStores, tmp_path: Path, scheme: str
) -> None:
    """Pieces of 1 MiB, four in flight, against each store's real ranged GETs: any error in
    a range's ends would fail the MD5 check and exhaust the attempts."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    for index, size in enumerate((5 << 20 | 12_345, 3 << 20, 100)):
        (model / f"shard-{index}.bin").write_bytes(random.Random(index).randbytes(size))
    stores.upload(model, "pieces")
    settings = RuntimeSettings(
        model_cache_dir=tmp_path / "cache",
        download_piece_mib=1,
        download_concurrency=4,
        download_attempts=1,
    )
    with capture_logs() as logs:
        path = resolve(f"{scheme}://models/pieces", settings=settings)
    assert same_tree(model, path)
    assert not [entry for entry in logs if entry["event"] == "download interrupted"]
    assert not list(path.rglob("*.part*"))


def _downloaded(uri: str, root: str) -> int:
    scheme, _, rest = uri.partition("://")
    bucket = bucket_for(scheme, rest.split("/")[0], timeout_s=30)
    return fetch_prefix(uri, bucket, Path(root)).downloaded_bytes


@pytest.mark.parametrize("scheme", ["s3", "gs"])
def test_replicas_sharing_a_cache_download_once(
    uploaded: Path, tmp_path: Path, scheme: str
) -> None:
    size = sum(p.stat().st_size for p in uploaded.rglob("*") if p.is_file())
    uri = f"{scheme}://models/tiny"
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        moved = pool.starmap(_downloaded, [(uri, str(tmp_path))] * 3)
    assert sorted(moved) == [0, 0, size]
    assert same_tree(uploaded, tmp_path / scheme / "models" / "tiny")


@pytest.mark.parametrize("scheme", ["s3", "gs"])
def test_a_partial_download_is_resumed(uploaded: Path, tmp_path: Path, scheme: str) -> None:
    weights = max((p for p in uploaded.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    name = weights.relative_to(uploaded)
    part = tmp_path / scheme / "models" / "tiny" / f"{name}.part"
    part.parent.mkdir(parents=True)
    half = weights.stat().st_size // 2
    part.write_bytes(weights.read_bytes()[:half])
    total = sum(p.stat().st_size for p in uploaded.rglob("*") if p.is_file())
    assert _downloaded(f"{scheme}://models/tiny", str(tmp_path)) == total - half
    assert same_tree(uploaded, tmp_path / scheme / "models" / "tiny")


@pytest.mark.parametrize(
    ("uri", "fragment"),
    [
        ("s3://no-such-bucket/tiny", "NoSuchBucket"),
        ("s3://models/absent", "no objects under this prefix"),
        ("gs://no-such-bucket/tiny", "gs://no-such-bucket/"),
        ("gs://models/absent", "no objects under this prefix"),
    ],
)
def test_a_missing_source_names_the_problem(
    stores: ObjectStores, tmp_path: Path, uri: str, fragment: str
) -> None:
    with pytest.raises(SourceError, match=fragment):
        resolve(uri, settings=RuntimeSettings(model_cache_dir=tmp_path, download_attempts=1))


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """A loopback port that accepts connections and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


@pytest.mark.timeout(60)  # a hang, not a timeout, would run into this
@pytest.mark.parametrize(
    ("scheme", "variable"), [("s3", "AWS_ENDPOINT_URL"), ("gs", "STORAGE_EMULATOR_HOST")]
)
def test_a_stalled_store_times_out_with_the_reason(
    stores: ObjectStores,
    silent_endpoint: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    scheme: str,
    variable: str,
) -> None:
    monkeypatch.setenv(variable, silent_endpoint)
    settings = RuntimeSettings(model_cache_dir=tmp_path, download_timeout_s=0.5)
    with pytest.raises(SourceError, match=rf"{scheme}://models/tiny.*(timed out|Timeout)"):
        resolve(f"{scheme}://models/tiny", settings=settings)


def test_local_mode_reports_an_unloadable_model_in_readiness_and_keeps_running(
    stores: ObjectStores, tmp_path: Path
) -> None:
    from kubellm_dev.procs import Supervisor

    from .conftest import free_port

    port = free_port()
    supervisor = Supervisor(tmp_path / "logs")
    process = supervisor.start(
        "runtime",
        [
            *(sys.executable, "-m", "kubellm_runtime.serve"),
            *("--model", "s3://models/absent", "--port", str(port)),
        ],
        env={"KUBELLM_RUNTIME_MODEL_CACHE_DIR": str(tmp_path / "cache")},
        ports=[port],
    )
    try:
        http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5, trust_env=False)

        def failed() -> bool:
            try:
                return "absent" in http.get("/ready").text
            except httpx.TransportError:
                return False  # not listening yet

        supervisor.wait_ready(
            process,
            failed,
            timeout=60,
            what="reporting the failed load",
        )
        ready = http.get("/ready").json()
        assert ready["reason"] == (
            "model failed to load: s3://models/absent: no objects under this prefix"
        )
        assert http.get("/health").status_code == 200
        assert process.alive()
    finally:
        supervisor.stop_all()
