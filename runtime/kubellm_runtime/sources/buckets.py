"""Object stores behind one small protocol: S3 through boto3, GCS through google-cloud-storage.

Each store lists the objects under a prefix (with the checksum the store publishes) and
streams one object from a byte offset into a file, so the cache can resume a broken download.
Library errors become SourceError (permanent: fix the URI or the credentials) or
TransientSourceError (a timeout or a dropped connection: retry, resuming).
"""

from __future__ import annotations

import base64
import contextlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal, Protocol

from kubellm_runtime.sources.errors import SourceError

DigestKind = Literal["md5", "crc32c"]
_CHUNK = 1 << 20
_CONNECTIONS = 10
_PLAIN_MD5_ETAG = re.compile(r'^"?([0-9a-f]{32})"?$')


class TransientSourceError(SourceError):
    """A timeout, a dropped connection or a store asking to slow down: worth another attempt
    from where it stopped (after ``retry_after_s`` when the store said how long)."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class RemoteObject:
    """One object under a prefix; ``digest`` is what the store publishes, when it is reliable."""

    key: str
    size: int
    digest: tuple[DigestKind, str] | None


class Bucket(Protocol):
    """What the download cache needs from an object store."""

    def list(self, prefix: str) -> list[RemoteObject]: ...

    def fetch(self, key: str, start: int, sink: BinaryIO, end: int | None = None) -> None:
        """Write the object's bytes from ``start`` to ``end`` (exclusive; None: its end)."""

    def put(self, key: str, path: Path) -> None:
        """Upload the file at ``path`` as the object ``key`` (the trainer's adapter)."""

    def delete(self, key: str) -> None:
        """Remove the object ``key`` (missing is fine)."""


class S3Bucket:
    """An S3 (or S3-compatible) bucket; credentials, region and endpoint from boto3's chain."""

    def __init__(self, name: str, timeout_s: float, connections: int = _CONNECTIONS) -> None:
        import boto3  # noqa: PLC0415 - only runtimes that read s3:// load boto3
        from botocore.config import Config  # noqa: PLC0415

        config = Config(
            connect_timeout=timeout_s,
            read_timeout=timeout_s,
            retries={"max_attempts": 3, "mode": "standard"},
            max_pool_connections=connections,  # one per concurrent ranged read
        )
        self.name = name
        self._client: Any = boto3.client("s3", config=config)

    def list(self, prefix: str) -> list[RemoteObject]:
        objects = []
        with self._errors(prefix):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.name, Prefix=prefix
            )
            for page in pages:
                for item in page.get("Contents", []):
                    if not item["Key"].endswith("/"):
                        objects.append(self._described(item))
        return objects

    def _described(self, item: dict[str, Any]) -> RemoteObject:
        # A single-part upload's ETag is the MD5 of its bytes, unless the object is encrypted
        # with KMS or a customer key; multipart ETags ("...-N") are not a content digest.
        match = _PLAIN_MD5_ETAG.match(item["ETag"])
        digest: tuple[DigestKind, str] | None = None
        if match:
            head = self._client.head_object(Bucket=self.name, Key=item["Key"])
            if head.get("ServerSideEncryption") != "aws:kms" and not head.get(
                "SSECustomerAlgorithm"
            ):
                digest = ("md5", match.group(1))
        return RemoteObject(key=item["Key"], size=item["Size"], digest=digest)

    def fetch(self, key: str, start: int, sink: BinaryIO, end: int | None = None) -> None:
        last = "" if end is None else str(end - 1)
        with self._errors(key):
            body = self._client.get_object(
                Bucket=self.name, Key=key, Range=f"bytes={start}-{last}"
            )["Body"]
            for chunk in body.iter_chunks(_CHUNK):
                sink.write(chunk)

    def put(self, key: str, path: Path) -> None:
        with self._errors(key):
            self._client.upload_file(str(path), self.name, key)

    def delete(self, key: str) -> None:
        with self._errors(key):
            self._client.delete_object(Bucket=self.name, Key=key)

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        from botocore import exceptions as boto  # noqa: PLC0415

        where = f"s3://{self.name}/{what}"
        try:
            yield
        except boto.ClientError as exc:
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            message = f"{where}: {error.get('Code', 'error')} ({error.get('Message', exc)})"
            if status >= 500 or error.get("Code") in ("SlowDown", "RequestTimeout"):  # noqa: PLR2004
                headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
                raise TransientSourceError(message, retry_after(headers)) from exc
            raise SourceError(message) from exc
        except boto.NoCredentialsError as exc:
            raise SourceError(
                f"{where}: no S3 credentials found (set AWS_* variables or a service account role)"
            ) from exc
        except (boto.ConnectTimeoutError, boto.ReadTimeoutError) as exc:
            raise TransientSourceError(f"{where}: timed out ({exc})") from exc
        except boto.BotoCoreError as exc:  # connection refused/reset, truncated body
            raise TransientSourceError(f"{where}: {exc}") from exc


class GCSBucket:
    """A Google Cloud Storage bucket; default credentials, anonymous where there are none."""

    def __init__(self, name: str, timeout_s: float, connections: int = _CONNECTIONS) -> None:
        from google.auth.exceptions import DefaultCredentialsError  # noqa: PLC0415
        from google.cloud import storage  # noqa: PLC0415 - only gs:// runtimes load it
        from google.cloud.storage.retry import DEFAULT_RETRY  # noqa: PLC0415
        from requests.adapters import HTTPAdapter  # noqa: PLC0415

        try:
            client = storage.Client()
        except DefaultCredentialsError:  # public buckets, or an emulator
            client = storage.Client.create_anonymous_client()
        # One pooled connection per concurrent ranged read (requests keeps 10 by default).
        for scheme in ("https://", "http://"):
            client._http.mount(scheme, HTTPAdapter(pool_maxsize=connections))
        self.name = name
        self._bucket: Any = client.bucket(name)
        self._client: Any = client
        self._timeout = (timeout_s, timeout_s)
        # The library retries listings for up to 120 s by default; bound it by our timeout.
        self._retry = DEFAULT_RETRY.with_timeout(3 * timeout_s)

    def list(self, prefix: str) -> list[RemoteObject]:
        with self._errors(prefix):
            blobs = list(
                self._client.list_blobs(
                    self.name, prefix=prefix, timeout=self._timeout, retry=self._retry
                )
            )
        return [self._described(blob) for blob in blobs if not blob.name.endswith("/")]

    @staticmethod
    def _described(blob: Any) -> RemoteObject:
        digest: tuple[DigestKind, str] | None = None
        if blob.md5_hash:  # composite objects have only a CRC32C
            digest = ("md5", base64.b64decode(blob.md5_hash).hex())
        elif blob.crc32c:
            digest = ("crc32c", blob.crc32c)
        return RemoteObject(key=blob.name, size=int(blob.size), digest=digest)

    def fetch(self, key: str, start: int, sink: BinaryIO, end: int | None = None) -> None:
        with self._errors(key):
            # No library retry and no library checksum: a ranged read cannot be checked alone,
            # and the cache resumes and verifies the whole file itself.
            self._bucket.blob(key).download_to_file(
                sink,
                start=start,
                end=None if end is None else end - 1,  # the library's end is inclusive
                checksum=None,
                retry=None,
                timeout=self._timeout,
            )

    def put(self, key: str, path: Path) -> None:
        with self._errors(key):
            self._bucket.blob(key).upload_from_filename(str(path), timeout=self._timeout)

    def delete(self, key: str) -> None:
        from google.api_core.exceptions import NotFound  # noqa: PLC0415

        with self._errors(key), contextlib.suppress(NotFound):
            self._bucket.blob(key).delete(timeout=self._timeout)

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        from google.api_core import exceptions as api  # noqa: PLC0415
        from requests import exceptions as http  # noqa: PLC0415

        where = f"gs://{self.name}/{what}"
        try:
            yield
        except (api.ServerError, api.TooManyRequests) as exc:
            headers = getattr(exc.response, "headers", None) or {}
            raise TransientSourceError(f"{where}: {exc.message}", retry_after(headers)) from exc
        except api.GoogleAPIError as exc:
            raise SourceError(f"{where}: {getattr(exc, 'message', exc)}") from exc
        except (http.Timeout, http.ConnectionError, http.ChunkedEncodingError) as exc:
            raise TransientSourceError(f"{where}: {type(exc).__name__} ({exc})") from exc


def retry_after(headers: Any) -> float | None:
    """A Retry-After header in seconds (a date form is treated as absent)."""
    value = next((v for k, v in dict(headers).items() if k.lower() == "retry-after"), None)
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def bucket_for(scheme: str, name: str, timeout_s: float, connections: int = _CONNECTIONS) -> Bucket:
    """The store for ``s3`` or ``gs``, with a connection pool of ``connections``."""
    if scheme == "s3":
        return S3Bucket(name, timeout_s, connections)
    if scheme == "gs":
        return GCSBucket(name, timeout_s, connections)
    raise SourceError(f"{scheme}:// is not an object store")
