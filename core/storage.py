"""Object storage behind one interface: a local directory or any S3-compatible store.

Keys are ``/``-separated relative names built by the service (never from a
client's filename). ``open_store(settings)`` picks the backend from
``MGS_STORAGE_URL``: ``file:///some/dir`` or ``s3://bucket/prefix`` (with
``MGS_S3_ENDPOINT_URL`` for MinIO or any other S3-compatible server).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol
from urllib.parse import urlparse

from core.config import Settings

if TYPE_CHECKING:
    from botocore.client import BaseClient

CHUNK = 1 << 20


def _check_key(key: str) -> str:
    p = PurePosixPath(key)
    if not key or p.is_absolute() or any(part in ("", ".", "..") for part in key.split("/")):
        raise ValueError(f"bad storage key {key!r}")
    return key


class ObjectStore(Protocol):
    """What the service needs from object storage."""

    def put_file(self, key: str, path: Path) -> None: ...
    def get_file(self, key: str, path: Path) -> None: ...
    def iter_bytes(self, key: str, chunk: int = CHUNK) -> Iterator[bytes]: ...
    def size(self, key: str) -> int | None: ...
    def list(self, prefix: str) -> list[str]: ...
    def delete_prefix(self, prefix: str) -> None: ...
    def delete(self, key: str) -> None: ...
    def ping(self) -> None: ...
    def abort_stale_uploads(self, older_than_s: float) -> int: ...


class LocalStore:
    """Objects as files under one directory."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*_check_key(key).split("/"))

    def put_file(self, key: str, path: Path) -> None:
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + f".part-{os.getpid()}")
        shutil.copyfile(path, tmp)
        os.replace(tmp, dest)

    def get_file(self, key: str, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self._path(key), path)

    def iter_bytes(self, key: str, chunk: int = CHUNK) -> Iterator[bytes]:
        with open(self._path(key), "rb") as fh:
            while buf := fh.read(chunk):
                yield buf

    def size(self, key: str) -> int | None:
        p = self._path(key)
        return p.stat().st_size if p.is_file() else None

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix.rstrip("/"))
        if not base.is_dir():
            return []
        return sorted(
            str(p.relative_to(self.root).as_posix())
            for p in base.rglob("*")
            if p.is_file() and ".part-" not in p.name
        )

    def delete_prefix(self, prefix: str) -> None:
        shutil.rmtree(self._path(prefix.rstrip("/")), ignore_errors=True)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def ping(self) -> None:
        if not os.access(self.root, os.W_OK):
            raise OSError(f"{self.root} is not writable")

    def abort_stale_uploads(self, older_than_s: float) -> int:
        """Remove ``.part-*`` files (a copy cut short) older than ``older_than_s``."""
        import time

        cutoff, n = time.time() - older_than_s, 0
        for p in self.root.rglob("*.part-*"):
            try:
                if p.is_file() and p.stat().st_mtime < cutoff:
                    p.unlink()
                    n += 1
            except OSError:
                pass
        return n


class S3Store:
    """Objects in an S3 bucket (boto3; multipart uploads for large files)."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        *,
        connect_timeout_s: float = 3.0,
        read_timeout_s: float = 20.0,
        max_attempts: int = 3,
    ) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client: BaseClient = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            config=Config(
                connect_timeout=connect_timeout_s,
                read_timeout=read_timeout_s,
                retries={"max_attempts": max_attempts, "mode": "standard"},
            ),
        )

    def _key(self, key: str) -> str:
        _check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put_file(self, key: str, path: Path) -> None:
        full = self._key(key)
        try:
            self.client.upload_file(str(path), self.bucket, full)
        except BaseException:
            self._abort_multipart(full)  # never leave an incomplete multipart upload
            raise

    def _abort_multipart(self, full_key: str) -> None:
        import contextlib

        with contextlib.suppress(Exception):
            resp = self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=full_key)
            for u in resp.get("Uploads", []):
                if u["Key"] == full_key:
                    self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=full_key, UploadId=u["UploadId"]
                    )

    def abort_stale_uploads(self, older_than_s: float) -> int:
        """Abort incomplete multipart uploads under this store's prefix started before
        ``older_than_s`` seconds ago (a process killed mid-upload leaves them)."""
        from datetime import UTC, datetime, timedelta

        cutoff = datetime.now(UTC) - timedelta(seconds=older_than_s)
        n = 0
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        if self.prefix:
            kwargs["Prefix"] = self.prefix + "/"
        while True:
            resp = self.client.list_multipart_uploads(**kwargs)
            for u in resp.get("Uploads", []):
                if u["Initiated"] < cutoff:
                    self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=u["Key"], UploadId=u["UploadId"]
                    )
                    n += 1
            if not resp.get("IsTruncated"):
                return n
            kwargs["KeyMarker"] = resp.get("NextKeyMarker")
            kwargs["UploadIdMarker"] = resp.get("NextUploadIdMarker")

    def get_file(self, key: str, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.client.download_file(self.bucket, self._key(key), str(path))

    def iter_bytes(self, key: str, chunk: int = CHUNK) -> Iterator[bytes]:
        body: BinaryIO = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        try:
            while buf := body.read(chunk):
                yield buf
        finally:
            body.close()

    def size(self, key: str) -> int | None:
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError:
            return None
        return int(head["ContentLength"])

    def list(self, prefix: str) -> list[str]:
        full = self._key(prefix.rstrip("/")) + "/"
        out: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=full
        ):
            for obj in page.get("Contents", []):
                k = obj["Key"]
                out.append(k[len(self.prefix) + 1 :] if self.prefix else k)
        return sorted(out)

    def delete_prefix(self, prefix: str) -> None:
        keys = [self._key(k) for k in self.list(prefix)]
        for i in range(0, len(keys), 1000):
            self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in keys[i : i + 1000]]}
            )

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def ping(self) -> None:
        self.client.head_bucket(Bucket=self.bucket)


def open_store(settings: Settings) -> ObjectStore:
    """The store named by ``settings.storage_url``."""
    url = urlparse(settings.storage_url)
    if url.scheme == "file":
        path = (url.netloc + url.path) if url.netloc not in ("", "localhost") else url.path
        return LocalStore(path)
    if url.scheme == "s3":
        return S3Store(
            url.netloc,
            url.path,
            settings.s3_endpoint_url,
            connect_timeout_s=settings.s3_connect_timeout_s,
            read_timeout_s=settings.s3_read_timeout_s,
            max_attempts=settings.s3_max_attempts,
        )
    raise ValueError(
        f"MGS_STORAGE_URL must be file:///dir or s3://bucket/prefix, not {settings.storage_url!r}"
    )


def upload_dir(store: ObjectStore, root: Path, prefix: str) -> list[str]:
    """Upload every file under ``root`` to ``prefix/<relative path>``; returns the keys."""
    keys = []
    for p in sorted(root.rglob("*")):
        if p.is_file():
            key = f"{prefix.rstrip('/')}/{p.relative_to(root).as_posix()}"
            store.put_file(key, p)
            keys.append(key)
    return keys


def download_prefix(store: ObjectStore, prefix: str, root: Path) -> list[Path]:
    """Download every object under ``prefix`` into ``root`` keeping relative paths."""
    out = []
    base = prefix.rstrip("/") + "/"
    for key in store.list(prefix):
        rel = key[len(base) :]
        dest = root.joinpath(*_check_key(rel).split("/"))
        store.get_file(key, dest)
        out.append(dest)
    return out
