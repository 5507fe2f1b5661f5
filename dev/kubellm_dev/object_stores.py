"""Real object-store protocols on loopback: moto's S3 server and a GCS emulator.

The runtime's boto3 and google-cloud-storage clients talk to them exactly as they would to
S3 and GCS (signed requests, listings, ranged reads); only the endpoint differs. Credential
look-ups that would reach a cloud metadata address are switched off.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import boto3
from gcp_storage_emulator.server import create_server
from google.cloud import storage
from moto.server import ThreadedMotoServer

BUCKET = "models"


@dataclass(frozen=True)
class ObjectStores:
    env: dict[str, str]
    """Variables that point boto3 and google-cloud-storage at the local servers."""

    def upload(self, directory: Path, prefix: str) -> None:
        """Copy ``directory`` under ``prefix`` in both stores' ``models`` bucket."""
        s3 = boto3.client("s3", endpoint_url=self.env["AWS_ENDPOINT_URL"])
        gcs = storage.Client.create_anonymous_client().bucket(BUCKET)
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            key = f"{prefix}/{path.relative_to(directory)}"
            s3.upload_file(str(path), BUCKET, key)
            gcs.blob(key).upload_from_filename(str(path))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def object_stores(environ: MutableMapping[str, str]) -> Iterator[ObjectStores]:
    """Start both servers, create the bucket, and yield the client environment."""
    s3_port, gcs_port = _free_port(), _free_port()
    s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=s3_port, verbose=False)
    gcs = create_server("127.0.0.1", gcs_port, in_memory=True, default_bucket=BUCKET)
    s3.start()
    gcs.start()
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{s3_port}",
        "AWS_ACCESS_KEY_ID": "kubellm-test",
        "AWS_SECRET_ACCESS_KEY": "kubellm-test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{gcs_port}",
        "NO_GCE_CHECK": "True",
    }
    environ.update(env)
    try:
        boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"]).create_bucket(Bucket=BUCKET)
        yield ObjectStores(env)
    finally:
        gcs.stop()
        s3.stop()
