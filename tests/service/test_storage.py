"""The object store against a local directory and a real S3 HTTP server (moto)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.storage import LocalStore, S3Store, download_prefix, upload_dir


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path, s3_server):  # type: ignore[no-untyped-def]
    if request.param == "local":
        return LocalStore(tmp_path / "store")
    return S3Store(s3_server["bucket"], f"t-{os.getpid()}-{tmp_path.name}", s3_server["endpoint"])


def test_roundtrip_list_delete(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "src"
    (src / "figures").mkdir(parents=True)
    (src / "a.txt").write_text("alpha")
    (src / "figures" / "b.png").write_bytes(b"\x89PNG" + b"0" * 100)
    keys = upload_dir(store, src, "jobs/j1/attempt-1")
    assert keys == ["jobs/j1/attempt-1/a.txt", "jobs/j1/attempt-1/figures/b.png"]
    assert store.list("jobs/j1/attempt-1") == keys
    assert store.size("jobs/j1/attempt-1/a.txt") == 5
    assert store.size("jobs/j1/attempt-1/missing") is None
    assert b"".join(store.iter_bytes("jobs/j1/attempt-1/a.txt")) == b"alpha"
    out = download_prefix(store, "jobs/j1/attempt-1", tmp_path / "dl")
    assert sorted(p.relative_to(tmp_path / "dl").as_posix() for p in out) == [
        "a.txt",
        "figures/b.png",
    ]
    store.delete_prefix("jobs/j1/attempt-1")
    assert store.list("jobs/j1/attempt-1") == []
    store.ping()


def test_large_file_multipart(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(1024) * (20 * 1024))  # 20 MiB: boto3 uses a multipart upload
    store.put_file("uploads/t/big", big)
    got = tmp_path / "got.bin"
    store.get_file("uploads/t/big", got)
    assert got.read_bytes() == big.read_bytes()


@pytest.mark.parametrize("key", ["../x", "/abs", "a//b", "a/./b", ""])
def test_bad_keys_refused(store, key: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError):
        store.size(key)
