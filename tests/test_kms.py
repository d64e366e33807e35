"""SSE-KMS buckets: the ETag is not an MD5, so the proof is a SHA-256 stored with the object."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import pytest
from fault_proxy import FaultProxy, Rule
from helpers import Moto, assert_drained, make_uploader, put_files, recorded_uploader, tree, write

from awscli_uploader.model import Identity
from awscli_uploader.s3.awscli import SHA256_METADATA
from awscli_uploader.scan import proof as proof_module
from awscli_uploader.scan import uploader as uploader_module
from awscli_uploader.scan.uploader import Uploader

MIB = 1024 * 1024


@pytest.fixture
def kms(moto: Moto, proxy: FaultProxy) -> FaultProxy:
    """moto keeps MD5 ETags under KMS; the proxy makes them opaque as real S3 does."""
    moto.create_bucket("kms-bucket")
    proxy.add("opaque-etag", path=r"^/kms-bucket")
    return proxy


def _uploader(root: Path, moto: Moto, aws_cli: str, proxy: FaultProxy) -> Uploader:
    return make_uploader(root, moto, aws_cli, endpoint=proxy.url)


@pytest.mark.slow
def test_kms_upload_is_proven_by_sha256(
    root: Path, moto: Moto, kms: FaultProxy, one_cli: str, caplog: pytest.LogCaptureFixture
) -> None:
    files = {"run/a.txt": b"alpha", "run/big.bin": os.urandom(9 * MIB), "run/empty": b""}
    put_files(root, {("kms-bucket", key): data for key, data in files.items()})
    uploader = _uploader(root, moto, one_cli, kms)
    with caplog.at_level(logging.INFO):
        stats = uploader.scan_once()
    assert (stats.uploaded, stats.failed) == (3, 0)
    assert_drained(root, moto, {("kms-bucket", key): data for key, data in files.items()})
    for key, data in files.items():
        stored = moto.head("kms-bucket", key)["Metadata"]
        assert stored == {SHA256_METADATA: hashlib.sha256(data).hexdigest()}
    assert "kms-bucket" in uploader.opaque
    assert any("proving content by SHA-256" in r.getMessage() for r in caplog.records)


def test_kms_present_with_sha256_is_deleted_without_upload(
    root: Path, moto: Moto, kms: FaultProxy, one_cli: str
) -> None:
    digest = hashlib.sha256(b"done").hexdigest()
    moto.put("kms-bucket", "done.txt", b"done", metadata={SHA256_METADATA: digest})
    write(root / "kms-bucket" / "done.txt", b"done")
    uploader = _uploader(root, moto, one_cli, kms)
    uploader.suspect([("kms-bucket", "done.txt")])  # an earlier attempt's: looked up first
    stats = uploader.scan_once()
    assert (stats.present, stats.uploaded) == (1, 0)
    assert tree(root) == []


@pytest.mark.slow
def test_kms_object_without_proof_is_uploaded_again_not_trusted(
    root: Path, moto: Moto, kms: FaultProxy, one_cli: str
) -> None:
    moto.put("kms-bucket", "other.txt", b"same")  # same bytes, but nothing proves it
    write(root / "kms-bucket" / "other.txt", b"same")
    stats = _uploader(root, moto, one_cli, kms).scan_once()
    assert (stats.present, stats.uploaded) == (0, 1)
    assert SHA256_METADATA in moto.head("kms-bucket", "other.txt")["Metadata"]
    assert tree(root) == []


@pytest.mark.slow
def test_kms_same_size_rewrite_is_uploaded_not_deleted(
    root: Path, moto: Moto, kms: FaultProxy, one_cli: str
) -> None:
    """The lookup before the upload finds an object of the same size whose stored SHA-256
    is another's: the file is uploaded, not deleted on the size."""
    old = hashlib.sha256(b"v1").hexdigest()
    moto.put("kms-bucket", "v.txt", b"v1", metadata={SHA256_METADATA: old})
    write(root / "kms-bucket" / "v.txt", b"v2")
    uploader, cli = recorded_uploader(root, moto, one_cli, endpoint=kms.url)
    uploader.suspect([("kms-bucket", "v.txt")])  # a small new key is not looked up
    stats = uploader.scan_once()
    assert (stats.uploaded, stats.present) == (1, 0)
    assert moto.get("kms-bucket", "v.txt") == b"v2"
    assert tree(root) == []
    assert cli.commands()[:3] == ["s3api list-objects-v2", "s3api head-object", "s3 cp"]


def _puts(proxy: FaultProxy) -> list[str]:
    with proxy.lock:
        return [r.split("?")[0] for r in proxy.requests if r.startswith("PUT /kms-bucket/")]


@pytest.mark.slow
def test_kms_bucket_in_two_chunks_uploads_each_file_once(
    root: Path, moto: Moto, kms: FaultProxy, one_cli: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bucket's context lives across its chunks: once the first chunk has found the
    ETags opaque, the second goes straight to the SHA-256 upload, not through the batch."""
    monkeypatch.setattr(uploader_module, "MAX_CHUNK_FILES", 1)
    files = {f"run/{n}.txt": f"file {n}".encode() for n in range(2)}
    put_files(root, {("kms-bucket", key): data for key, data in files.items()})
    stats = _uploader(root, moto, one_cli, kms).scan_once()
    assert (stats.uploaded, stats.failed) == (2, 0)
    assert_drained(root, moto, {("kms-bucket", key): data for key, data in files.items()})
    # chunk 1: the batch, then the SHA-256 upload; chunk 2: the SHA-256 upload only
    assert _puts(kms) == ["PUT /kms-bucket/run/0.txt"] * 2 + ["PUT /kms-bucket/run/1.txt"]


@pytest.mark.slow
def test_the_opaque_flag_survives_a_restart(
    root: Path, moto: Moto, kms: FaultProxy, one_cli: str
) -> None:
    """Remembered in the state directory: the next process goes straight to SHA-256."""
    put_files(root, {("kms-bucket", "first.txt"): b"first"})
    first = _uploader(root, moto, one_cli, kms)
    first.config.state.path.mkdir(mode=0o700)
    assert first.scan_once().uploaded == 1
    assert first.config.state.opaque_buckets() == {"kms-bucket"}
    with kms.lock:
        kms.requests.clear()
    put_files(root, {("kms-bucket", "second.txt"): b"second"})
    again = _uploader(root, moto, one_cli, kms)
    assert "kms-bucket" in again.opaque
    assert again.scan_once().uploaded == 1
    assert _puts(kms) == ["PUT /kms-bucket/second.txt"]  # no batch upload first


def test_the_sha256_proof_holds_only_for_the_file_as_it_was_hashed(
    root: Path, moto: Moto, kms: FaultProxy, one_cli: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hashed as A, rewritten to B before the CLI reads it (S3 gets B with A's SHA-256),
    then back to A before the proof: the bytes match the stored SHA-256, but the file is
    not the one that was hashed; it is kept, never deleted for B."""
    path = write(root / "kms-bucket" / "flip.txt", b"AAAA")
    real = proof_module.local_sha256

    calls: list[Path] = []

    def hash_then_rewrite(target: Path) -> tuple[str, Identity]:
        found = real(target)
        calls.append(target)
        if len(calls) == 1:  # the hash before the upload (of the staged link: same inode)
            path.write_bytes(b"BBBB")
        return found

    def put_back() -> None:
        path.write_bytes(b"AAAA")

    monkeypatch.setattr(proof_module, "local_sha256", hash_then_rewrite)
    back = Rule("hook", method="PUT", path=r"^/kms-bucket/flip", hook=lambda m, p: put_back())
    with kms.lock:
        kms.rules.insert(0, back)  # before the fixture's opaque-etag rule, which would match

    uploader = _uploader(root, moto, one_cli, kms)
    uploader.opaque.add("kms-bucket")  # straight to the SHA-256 upload
    stats = uploader.scan_once()
    assert stats.uploaded == 0
    assert path.read_bytes() == b"AAAA"
    assert moto.get("kms-bucket", "flip.txt") == b"BBBB"  # what S3 holds: not the file
