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
    store.delete("jobs/j1/attempt-1/a.txt")
    assert store.list("jobs/j1/attempt-1") == ["jobs/j1/attempt-1/figures/b.png"]
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


def test_stale_multipart_uploads_are_aborted(s3_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A process killed mid-upload leaves an incomplete multipart upload; the sweep aborts
    those older than the cutoff (and only under this store's prefix)."""
    store = S3Store(s3_server["bucket"], f"mp-{tmp_path.name}", s3_server["endpoint"])
    other = S3Store(s3_server["bucket"], f"other-{tmp_path.name}", s3_server["endpoint"])
    c = store.client
    mine = c.create_multipart_upload(Bucket=store.bucket, Key=store._key("uploads/t/x"))
    theirs = c.create_multipart_upload(Bucket=other.bucket, Key=other._key("uploads/t/y"))

    def pending(s: S3Store) -> list[str]:
        resp = c.list_multipart_uploads(Bucket=s.bucket, Prefix=s.prefix + "/")
        return [u["UploadId"] for u in resp.get("Uploads", [])]

    # moto reports every multipart upload as initiated in 2010: a cutoff 31 years back
    # keeps it, one in the future takes it
    assert store.abort_stale_uploads(10**9) == 0
    assert pending(store) == [mine["UploadId"]]
    assert store.abort_stale_uploads(-1) == 1
    assert pending(store) == []
    assert pending(other) == [theirs["UploadId"]]
    other.abort_stale_uploads(-1)


def test_upload_temp_sweep(tmp_path: Path) -> None:
    """Temp files of a process that is gone go at once; a live process's only when old."""
    import subprocess
    import sys

    from core.jobs.cleanup import PREFIX, sweep_upload_temp

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead_file = tmp_path / f"{PREFIX}{gone.pid}-abc"
        live_file = tmp_path / f"{PREFIX}{live.pid}-def"
        own_file = tmp_path / f"{PREFIX}{os.getpid()}-ghi"
        for p in (dead_file, live_file, own_file):
            p.write_bytes(b"x" * 10)
        assert sweep_upload_temp(3600, tmp_path) == [dead_file]
        assert live_file.exists() and own_file.exists()
        assert sweep_upload_temp(3600, tmp_path, at_start=True) == [own_file]
        os.utime(live_file, (1, 1))
        assert sweep_upload_temp(3600, tmp_path) == [live_file]
    finally:
        live.kill()
        live.wait()
