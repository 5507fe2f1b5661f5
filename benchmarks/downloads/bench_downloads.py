"""Download benchmark: kubellm's source cache against boto3's transfer manager and one stream.

Run by hand, inside the loopback-only namespace (the S3 server listens on loopback only):

    .venv/bin/kubellm-dev netns -- .venv/bin/python benchmarks/downloads/bench_downloads.py

moto's S3 server (the S3 protocol server the integration tests run) is started in its own
process, so it does not share the client's interpreter lock; a model of ``--files`` shards of
``--file-mib`` MiB each plus a config.json is uploaded with boto3's ``upload_file`` (multipart
above 8 MiB, as checkpoints are), then downloaded ``--repeats`` times by each contender into an
empty directory, the order rotated every round:

* single-stream: ``get_object`` per file, one after another, the body copied in 1 MiB chunks
  (what the runtime did before: one connection at a time);
* transfer-manager: boto3's ``TransferManager`` with its default ``TransferConfig`` (10 threads,
  8 MiB ranged parts) and every file submitted at once: the anchor;
* tm-<piece>M-c<N>: the same manager tuned like kubellm (parts of ``--piece-mib``, as many
  threads as the largest ``--kubellm-concurrency``), to tell the piece size from the rest;
* kubellm-cN: ``kubellm_runtime.sources.cache.fetch_prefix`` (the runtime's own path: ranged
  pieces of ``--piece-mib``, N in flight over all files, the per-piece record, verification by
  the stores' digest where there is one, the manifest and the lock).

Each result is checked byte for byte against the uploaded files (sha256, outside the timing).

``--per-connection-mbps`` puts ``throttle.py`` between the clients and moto: each connection's
answer is paced to that rate, as S3 and GCS serve one stream at tens of MB/s. Without it,
loopback gives one connection all the CPU can move. moto answers a ranged GET by copying the
whole object first, so many small ranges cost it more than a few large ones (the default
transfer manager's 8 MiB parts pay for that most).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig, create_transfer_manager

from kubellm_dev.procs import Supervisor
from kubellm_runtime.sources.buckets import bucket_for
from kubellm_runtime.sources.cache import fetch_prefix
from kubellm_runtime.sources.transfer import TransferOptions

BUCKET, PREFIX = "models", "bench"
MIB = 1 << 20


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(supervisor: Supervisor, name: str, argv: list[str], port: int) -> str:
    server = supervisor.start(name, argv, ports=[port])

    def listening() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True

    supervisor.wait_ready(server, listening, timeout=60, what="listening")
    return f"http://127.0.0.1:{port}"


def start_store(supervisor: Supervisor, mbps: float | None) -> tuple[str, str]:
    """moto's S3 server, and the endpoint downloads use: moto itself, or a relay in front of
    it pacing each connection to ``mbps`` MB/s. Returns (upload endpoint, download endpoint)."""
    port = free_port()
    moto = start(
        supervisor,
        "moto",
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        port,
    )
    if mbps is None:
        return moto, moto
    relay_port = free_port()
    argv = [sys.executable, str(Path(__file__).with_name("throttle.py"))]
    argv += [str(relay_port), str(port), str(mbps * 1e6)]
    return moto, start(supervisor, "throttle", argv, relay_port)


def credentials() -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": "kubellm-bench",
        "AWS_SECRET_ACCESS_KEY": "kubellm-bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def make_model(folder: Path, files: int, file_mib: int) -> dict[str, str]:
    """Random shards and a config; returns each relative name's sha256."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "bench"}')
    for index in range(files):
        with (folder / f"model-{index:05d}.safetensors").open("wb") as out:
            for _ in range(file_mib):
                out.write(os.urandom(MIB))
    return {p.name: sha256(p) for p in folder.iterdir()}


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(8 * MIB):
            digest.update(block)
    return digest.hexdigest()


def single_stream(client: Any, keys: list[str], dest: Path) -> None:
    for key in keys:
        body = client.get_object(Bucket=BUCKET, Key=key)["Body"]
        with (dest / key.removeprefix(f"{PREFIX}/")).open("wb") as out:
            for chunk in body.iter_chunks(MIB):
                out.write(chunk)


def transfer_manager(config: TransferConfig) -> Callable[[Any, list[str], Path], None]:
    def run(client: Any, keys: list[str], dest: Path) -> None:
        with create_transfer_manager(client, config) as manager:
            futures = [
                manager.download(BUCKET, key, str(dest / key.removeprefix(f"{PREFIX}/")))
                for key in keys
            ]
            for future in futures:
                future.result()

    return run


def kubellm(concurrency: int, piece_mib: int) -> Callable[[Any, list[str], Path], None]:
    options = TransferOptions(concurrency=concurrency, piece_bytes=piece_mib * MIB)

    def run(client: Any, keys: list[str], dest: Path) -> None:
        bucket = bucket_for("s3", BUCKET, timeout_s=60, connections=concurrency)
        fetched = fetch_prefix(f"s3://{BUCKET}/{PREFIX}", bucket, dest, options=options)
        for path in fetched.path.iterdir():  # the cache's layout, moved to the plain one
            path.rename(dest / path.name)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--file-mib", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--piece-mib", type=int, default=64)
    parser.add_argument("--kubellm-concurrency", type=int, nargs="+", default=[16])
    parser.add_argument(
        "--per-connection-mbps",
        type=float,
        help="pace every download connection to this many MB/s (a real store's per-stream rate)",
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="kubellm-bench-downloads-"))
    supervisor = Supervisor(work / "logs")
    try:
        upload, download = start_store(supervisor, args.per_connection_mbps)
        os.environ.update(credentials())
        uploader = boto3.client("s3", endpoint_url=upload)
        uploader.create_bucket(Bucket=BUCKET)
        expected = make_model(work / "model", args.files, args.file_mib)
        for name in sorted(expected):
            uploader.upload_file(str(work / "model" / name), BUCKET, f"{PREFIX}/{name}")
        shutil.rmtree(work / "model")
        os.environ["AWS_ENDPOINT_URL"] = download  # what the runtime's own client reads
        client = boto3.client("s3")
        keys = sorted(f"{PREFIX}/{name}" for name in expected)
        total = sum(o["Size"] for o in client.list_objects_v2(Bucket=BUCKET)["Contents"])
        most = max(args.kubellm_concurrency)
        tuned = TransferConfig(multipart_chunksize=args.piece_mib * MIB, max_concurrency=most)
        contenders: dict[str, Callable[[Any, list[str], Path], None]] = {
            "single-stream": single_stream,
            "transfer-manager": transfer_manager(TransferConfig()),
            f"tm-{args.piece_mib}M-c{most}": transfer_manager(tuned),
        }
        for concurrency in args.kubellm_concurrency:
            contenders[f"kubellm-c{concurrency}"] = kubellm(concurrency, args.piece_mib)
        seconds: dict[str, list[float]] = {name: [] for name in contenders}
        names = list(contenders)
        for round_ in range(args.repeats):
            for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
                dest = work / "out" / name
                dest.mkdir(parents=True)
                start = time.perf_counter()
                contenders[name](client, keys, dest)
                seconds[name].append(time.perf_counter() - start)
                got = {
                    p.name: sha256(p) for p in dest.iterdir() if p.is_file() and p.name[0] != "."
                }
                if got != expected:
                    raise SystemExit(f"{name}: downloaded files differ from the uploaded ones")
                shutil.rmtree(work / "out")
        print(
            f"# {platform.node()} {os.cpu_count()} cores, python {platform.python_version()}; "
            f"{args.files} x {args.file_mib} MiB + config = {total / 1e9:.2f} GB, "
            f"{args.repeats} rounds, kubellm pieces {args.piece_mib} MiB, per connection: "
            + (f"{args.per_connection_mbps:g} MB/s" if args.per_connection_mbps else "unpaced")
        )
        anchor = statistics.median(seconds["transfer-manager"])
        print(f"{'contender':<18} {'median s':>9} {'MB/s':>8} {'vs TM':>6}  runs (s)")
        for name, runs in seconds.items():
            median = statistics.median(runs)
            print(
                f"{name:<18} {median:>9.2f} {total / median / 1e6:>8.1f} "
                f"{anchor / median:>6.2f}  {' '.join(f'{r:.2f}' for r in runs)}"
            )
    finally:
        supervisor.stop_all()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
