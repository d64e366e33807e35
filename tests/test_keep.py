"""--if-exists keep: an object that may hold other content is never replaced, and a file is
never stranded by an object its ETag can't prove.

The upload creates only (put-object --if-none-match, where the CLI has it), so a key another
writer creates between the lookup and the upload is not overwritten; an object whose ETag
proves nothing (SSE-KMS without our SHA-256) is read back and compared by SHA-256.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from pathlib import Path

import pytest
from fault_proxy import FaultProxy
from helpers import (
    Moto,
    has_if_none_match,
    make_uploader,
    recorded_uploader,
    run_once,
    tree,
    write,
)

from awscli_uploader.s3.awscli import SHA256_METADATA
from awscli_uploader.scan import check
from awscli_uploader.scan.bucket import MAX_PUTS

MIB = 1024 * 1024
THEIRS = b'{"from": "another instance"}'


def test_keep_never_overwrites_a_key_created_during_the_upload(
    root: Path, moto: Moto, proxy: FaultProxy, aws_cli: str
) -> None:
    """The key is free at the lookup; another writer creates it just as the upload arrives.
    With a CLI that has --if-none-match, S3 refuses the upload (412) and the file stays with
    an ERROR; with one that has not, the start says that this race is open."""
    moto.create_bucket("shared-bucket")
    write(root / "shared-bucket" / "state.json", b'{"v": 2}')
    big = os.urandom(9 * MIB)  # over the multipart threshold: one put-object all the same
    write(root / "shared-bucket" / "big.bin", big)

    def another_writer(method: str, path: str) -> None:
        moto.put("shared-bucket", "state.json", THEIRS)

    proxy.add("hook", method="PUT", path=r"^/shared-bucket/state\.json", hook=another_writer)
    ran = run_once(root, proxy.url, aws_cli, "--if-exists", "keep")
    assert moto.get("shared-bucket", "big.bin") == big
    if has_if_none_match(aws_cli):
        assert moto.get("shared-bucket", "state.json") == THEIRS
        assert "a key another writer creates meanwhile is never overwritten" in ran.stdout
        assert "where the store honours If-None-Match" in ran.stdout  # an --endpoint-url's
        assert tree(root) == ["shared-bucket/state.json"]
        assert ran.returncode == 1, ran.stdout + ran.stderr
        error = next(line for line in ran.stdout.splitlines() if "state.json" in line)
        assert "ERROR" in error and "412 Precondition Failed" in error
        assert "S3 28 bytes, local 8 bytes" in error and "kept (--if-exists keep)" in error
    else:
        assert "WARN --if-exists keep: this AWS CLI has no put-object --if-none-match" in (
            ran.stdout
        )
        assert "a key another writer creates in between is overwritten" in ran.stdout
        assert tree(root) == []  # the race the start warned of: the upload won
        assert moto.get("shared-bucket", "state.json") == b'{"v": 2}'


@pytest.mark.slow
def test_keep_deletes_a_file_another_writer_uploaded_the_same_during_the_upload(
    root: Path, moto: Moto, proxy: FaultProxy, one_cli: str
) -> None:
    """Two instances with the same file: the one that loses the race proves the winner's
    object and deletes its copy, without uploading it again."""
    if not has_if_none_match(one_cli):
        pytest.skip("this AWS CLI has no --if-none-match")
    moto.create_bucket("shared-bucket")
    write(root / "shared-bucket" / "state.json", b'{"v": 2}')

    def same_writer(method: str, path: str) -> None:
        moto.put("shared-bucket", "state.json", b'{"v": 2}')

    proxy.add("hook", method="PUT", path=r"^/shared-bucket/state\.json", hook=same_writer)
    stats = make_uploader(root, moto, one_cli, endpoint=proxy.url, if_exists="keep").scan_once()
    assert (stats.uploaded, stats.present, stats.failed) == (0, 1, 0)
    assert tree(root) == []
    assert moto.head("shared-bucket", "state.json")["Metadata"] == {}  # the winner's object


def puts(calls: list[list[str]]) -> list[list[str]]:
    """The uploads among the calls: put-object --if-none-match (not the start's skeleton)."""
    return [call for call in calls if "--if-none-match=*" in call]


@pytest.mark.slow
def test_keep_proves_each_upload_by_its_own_answer(root: Path, moto: Moto, one_cli: str) -> None:
    """One aws process a file: S3's answer to the put-object (its ETag, S3's MD5 of what it
    stored) proves the file; no head-object follows."""
    if not has_if_none_match(one_cli):
        pytest.skip("this AWS CLI has no --if-none-match")
    moto.create_bucket("shared-bucket")
    files = {f"run/{n}.json": os.urandom(100 + n) for n in range(2)}
    for key, data in files.items():
        write(root / "shared-bucket" / key, data)
    recorded = recorded_uploader(root, moto, one_cli, if_exists="keep")
    stats = recorded.uploader.scan_once()
    assert (stats.uploaded, stats.failed) == (2, 0)
    assert tree(root) == []
    assert {key: moto.get("shared-bucket", key) for key in files} == files
    assert len(puts(recorded.cli.calls)) == 2
    assert "s3api head-object" not in recorded.cli.commands()


@pytest.mark.slow
def test_keep_runs_several_put_objects_at_once(
    root: Path, moto: Moto, proxy: FaultProxy, one_cli: str
) -> None:
    """Each file's put-object is an aws process of its own, so they run MAX_PUTS at a time:
    each PUT is held a while at the proxy, and more than one is held at once, never more
    than MAX_PUTS."""
    if not has_if_none_match(one_cli):
        pytest.skip("this AWS CLI has no --if-none-match")
    moto.create_bucket("shared-bucket")
    files = {f"run/{n}.json": os.urandom(200) for n in range(MAX_PUTS + 1)}  # one waits
    for key, data in files.items():
        write(root / "shared-bucket" / key, data)
    held, most, lock = 0, 0, threading.Lock()

    def hold(method: str, path: str) -> None:
        nonlocal held, most
        with lock:
            held += 1
            most = max(most, held)
        time.sleep(3)  # longer than an aws process takes to start on a loaded host
        with lock:
            held -= 1

    proxy.add("hook", method="PUT", path=r"^/shared-bucket/run/", hook=hold)
    stats = make_uploader(root, moto, one_cli, endpoint=proxy.url, if_exists="keep").scan_once()
    assert (stats.uploaded, stats.failed) == (len(files), 0)
    assert tree(root) == []
    assert 1 < most <= MAX_PUTS


@pytest.mark.slow
def test_keep_starts_no_put_object_once_stopped(
    root: Path, moto: Moto, proxy: FaultProxy, one_cli: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A stop (SIGTERM) while the pool's put-objects run: those under way finish and are
    proven and settled; none of the files still waiting for a place in the pool starts."""
    if not has_if_none_match(one_cli):
        pytest.skip("this AWS CLI has no --if-none-match")
    moto.create_bucket("shared-bucket")
    files = {f"run/{n}.json": os.urandom(200) for n in range(3 * MAX_PUTS)}
    for key, data in files.items():
        write(root / "shared-bucket" / key, data)
    recorded = recorded_uploader(root, moto, one_cli, endpoint=proxy.url, if_exists="keep")

    def stop(method: str, path: str) -> None:
        recorded.uploader.stop.set()

    proxy.add("hook", method="PUT", path=r"^/shared-bucket/run/", hook=stop)
    with caplog.at_level(logging.INFO):
        stats = recorded.uploader.scan_once()
    started = len(puts(recorded.cli.calls))
    assert 1 <= started <= MAX_PUTS
    assert (stats.uploaded, stats.failed) == (started, 0)
    assert len(tree(root)) == len(files) - started
    left = f"stopping: {len(files) - started} files in shared-bucket left for the next run"
    assert any(r.getMessage() == left for r in caplog.records)  # said, not silently dropped


@pytest.mark.slow
@pytest.mark.parametrize("checks_md5", [True, False], ids=["s3", "store-ignores-content-md5"])
def test_keep_never_deletes_a_file_s3_stored_otherwise(
    root: Path,
    moto: Moto,
    proxy: FaultProxy,
    one_cli: str,
    checks_md5: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A body that reaches S3 other than the file was hashed (here a byte flipped on the way;
    as well a file rewritten in place between its hash and the CLI's read). S3 refuses it by
    its Content-MD5 (BadDigest): no object is created, so none can strand the file as
    "different content", and the next scan uploads it. A store that ignores Content-MD5
    (moto) stores it, and the answer's ETag shows it: the file stays with an ERROR, at this
    scan and the next."""
    if not has_if_none_match(one_cli):
        pytest.skip("this AWS CLI has no --if-none-match")
    proxy.check_md5 = checks_md5
    moto.create_bucket("shared-bucket")
    data = os.urandom(4096)
    write(root / "shared-bucket" / "state.json", data)
    proxy.add("corrupt", method="PUT", path=r"^/shared-bucket/state\.json", times=1)
    uploader = make_uploader(root, moto, one_cli, endpoint=proxy.url, if_exists="keep")
    with caplog.at_level(logging.INFO):
        first = uploader.scan_once()
    assert tree(root) == ["shared-bucket/state.json"]  # never deleted
    assert (first.uploaded, first.failed) == (0, 1)
    said = [r.getMessage() for r in caplog.records if r.name.startswith("awscli_uploader")]
    line = next(message for message in said if "state.json" in message)
    if checks_md5:
        assert "BadDigest" in line
        assert moto.keys("shared-bucket") == []  # nothing stored
        second = uploader.scan_once()
        assert (second.uploaded, second.failed) == (1, 0)
        assert tree(root) == []
        assert moto.get("shared-bucket", "state.json") == data
    else:
        assert "same size, different content, by its ETag" in line
        stored = moto.head("shared-bucket", "state.json")["ETag"].strip('"')
        assert stored != hashlib.md5(data).hexdigest()  # the flipped byte
        # The next scan's lookup finds our SHA-256 in the metadata beside other bytes: the
        # ETag, S3's own MD5, outweighs what the upload said, so the file stays.
        second = uploader.scan_once()
        assert (second.present, second.uploaded) == (0, 0)
        assert tree(root) == ["shared-bucket/state.json"]


@pytest.fixture
def kms(moto: Moto, proxy: FaultProxy) -> FaultProxy:
    """moto keeps MD5 ETags under KMS; the proxy makes them opaque as real S3 does."""
    moto.create_bucket("kms-bucket")
    proxy.add("opaque-etag", path=r"^/kms-bucket")
    return proxy


@pytest.mark.slow
@pytest.mark.parametrize("theirs", [b"same bytes", b"other byte"])
def test_keep_reads_back_an_object_its_etag_cannot_prove(
    root: Path,
    moto: Moto,
    kms: FaultProxy,
    one_cli: str,
    theirs: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An SSE-KMS object without our SHA-256 (another writer's, or a run killed before its
    SHA-256 upload) is neither replaced nor a reason to keep the file forever: its bytes are
    read back; the same bytes delete the file, other ones keep it with an ERROR."""
    moto.put("kms-bucket", "run/x.dat", theirs)
    write(root / "kms-bucket" / "run" / "x.dat", b"same bytes")
    uploader = make_uploader(root, moto, one_cli, endpoint=kms.url, if_exists="keep")
    with caplog.at_level(logging.INFO):
        stats = uploader.scan_once()
    assert moto.get("kms-bucket", "run/x.dat") == theirs  # never replaced
    assert SHA256_METADATA not in moto.head("kms-bucket", "run/x.dat")["Metadata"]
    assert stats.uploaded == 0
    lines = [(r.levelno, r.getMessage()) for r in caplog.records if "x.dat" in r.getMessage()]
    if theirs == b"same bytes":
        assert (stats.present, stats.failed) == (1, 0)
        assert tree(root) == []
    else:
        assert (stats.present, stats.failed) == (0, 1)
        assert tree(root) == ["kms-bucket/run/x.dat"]
        assert lines[-1][0] == logging.ERROR
        assert "same size, different SHA-256, read back" in lines[-1][1]
    staging = root / ".awscli-uploader" / "staging"
    assert not staging.exists() or list(staging.iterdir()) == []  # the copy read back is gone


def test_keep_in_dry_run_reads_nothing_back(
    root: Path, moto: Moto, kms: FaultProxy, one_cli: str, caplog: pytest.LogCaptureFixture
) -> None:
    moto.put("kms-bucket", "x.dat", b"same bytes")
    write(root / "kms-bucket" / "x.dat", b"same bytes")
    uploader = make_uploader(root, moto, one_cli, endpoint=kms.url, if_exists="keep", dry_run=True)
    with caplog.at_level(logging.INFO):
        stats = uploader.scan_once()
    assert (stats.present, stats.failed) == (0, 0)
    assert tree(root) == ["kms-bucket/x.dat"]
    assert any("would read it back" in r.getMessage() for r in caplog.records)
    assert not any(r.startswith("GET /kms-bucket/x.dat") for r in kms.requests)


@pytest.mark.slow
def test_keep_proves_an_upload_to_a_kms_bucket_by_sha256(
    root: Path, moto: Moto, kms: FaultProxy, one_cli: str
) -> None:
    """Under SSE-KMS the put-object's ETag is no MD5: the file is proven by head-object and the
    SHA-256 it stored (which S3's check of the Content-MD5 ties to the bytes it holds)."""
    if not has_if_none_match(one_cli):
        pytest.skip("this AWS CLI has no --if-none-match")
    write(root / "kms-bucket" / "x.dat", b"kms bytes")
    recorded = recorded_uploader(root, moto, one_cli, endpoint=kms.url, if_exists="keep")
    stats = recorded.uploader.scan_once()
    assert (stats.uploaded, stats.failed) == (1, 0)
    assert tree(root) == []
    assert moto.get("kms-bucket", "x.dat") == b"kms bytes"
    assert SHA256_METADATA in moto.head("kms-bucket", "x.dat")["Metadata"]
    assert recorded.cli.commands().count("s3api head-object") == 1


@pytest.mark.slow
def test_keep_reads_an_object_found_different_once_while_neither_side_changes(
    root: Path, moto: Moto, kms: FaultProxy, one_cli: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Each read-back costs the object's size in egress, KMS decrypts and room on the
    writers' disk: one that found other bytes is not repeated at every scan."""
    moto.put("kms-bucket", "run/x.dat", b"other byte")
    path = write(root / "kms-bucket" / "run" / "x.dat", b"same bytes")
    uploader = make_uploader(root, moto, one_cli, endpoint=kms.url, if_exists="keep")

    def reads() -> int:
        with kms.lock:
            return sum(r.startswith("GET /kms-bucket/run/x.dat") for r in kms.requests)

    with caplog.at_level(logging.INFO):
        for _ in range(2):  # the second scan reads nothing back
            assert uploader.scan_once().present == 0
    assert reads() == 1
    assert any("read back before and found different" in r.getMessage() for r in caplog.records)
    write(path, b"other byte")  # the file changes (a new mtime): read once more, the same
    assert uploader.scan_once().present == 1
    assert reads() == 2
    assert tree(root) == []


def test_keep_reads_nothing_back_without_room_for_it(
    root: Path,
    moto: Moto,
    kms: FaultProxy,
    one_cli: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The read-back lands on the root's filesystem, the writers' own: it never fills it."""
    moto.put("kms-bucket", "x.dat", b"same bytes")
    write(root / "kms-bucket" / "x.dat", b"same bytes")
    monkeypatch.setattr(check, "free_bytes", lambda path: check.READ_BACK_RESERVE)
    uploader = make_uploader(root, moto, one_cli, endpoint=kms.url, if_exists="keep")
    with caplog.at_level(logging.INFO):
        stats = uploader.scan_once()
    assert (stats.present, stats.failed) == (0, 1)
    assert tree(root) == ["kms-bucket/x.dat"]
    assert any("no room to read 10 bytes back" in r.getMessage() for r in caplog.records)
    assert not any(r.startswith("GET /kms-bucket/x.dat") for r in kms.requests)
