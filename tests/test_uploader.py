"""One scan against moto with the real AWS CLI (v1 and v2)."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import Moto, make_uploader, recorded_uploader, tree, write

from awscli_uploader.errors import AwsCliError
from awscli_uploader.local.state import StateDir
from awscli_uploader.model import Candidate
from awscli_uploader.s3.awscli import SHA256_METADATA, Result
from awscli_uploader.scan import check
from awscli_uploader.scan import uploader as uploader_module

MIB = 1024 * 1024


@pytest.mark.floor  # the real drain of tests/test_py39.py
def test_uploads_verifies_and_deletes(root: Path, moto: Moto, aws_cli: str) -> None:
    moto.create_bucket("bucket-one")
    moto.create_bucket("bucket-two")
    write(root / "bucket-one" / "images" / "a.png", b"png bytes")
    write(root / "bucket-one" / "log.txt", b"log")
    write(root / "bucket-two" / "deep" / "er" / "data.bin", os.urandom(70_000))
    expected = (root / "bucket-two/deep/er/data.bin").read_bytes()
    stats = make_uploader(root, moto, aws_cli).scan_once()
    assert (stats.uploaded, stats.failed) == (3, 0)
    assert moto.keys("bucket-one") == ["images/a.png", "log.txt"]
    assert moto.get("bucket-one", "images/a.png") == b"png bytes"
    assert moto.get("bucket-two", "deep/er/data.bin") == expected
    assert tree(root) == []
    assert (root / "bucket-one").is_dir()
    assert (root / "bucket-two").is_dir()


def test_unstable_file_is_kept(root: Path, moto: Moto, one_cli: str) -> None:
    moto.create_bucket("bucket-one")
    write(root / "bucket-one" / "writing.txt", b"partial", mtime=None)
    stats = make_uploader(root, moto, one_cli).scan_once()
    assert (stats.unstable, stats.uploaded) == (1, 0)
    assert tree(root) == ["bucket-one/writing.txt"]
    assert moto.keys("bucket-one") == []


@pytest.mark.parametrize("why", ["big", "suspect"])
def test_already_present_is_deleted_without_upload(
    root: Path, moto: Moto, one_cli: str, why: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key S3 may hold already (a big file, a key an earlier attempt left) is looked up
    before the upload: the same content there means delete, no upload."""
    moto.create_bucket("bucket-one")
    moto.put("bucket-one", "done.txt", b"same", metadata={"marker": "original"})
    write(root / "bucket-one" / "done.txt", b"same")
    uploader = make_uploader(root, moto, one_cli)
    if why == "big":
        monkeypatch.setattr(check, "CHECK_FIRST_BYTES", 4)
    else:
        uploader.suspect([("bucket-one", "done.txt")])
    stats = uploader.scan_once()
    assert (stats.present, stats.uploaded) == (1, 0)
    assert tree(root) == []
    # a re-upload would have replaced the object and dropped its metadata
    assert moto.head("bucket-one", "done.txt")["Metadata"] == {"marker": "original"}
    assert uploader.suspects.keys == set()


def test_a_new_small_file_is_uploaded_without_a_lookup(
    root: Path, moto: Moto, one_cli: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small file no attempt has touched can't be in S3 but by chance: no listing before
    its upload, one after (the proof); an identical object there is simply replaced."""
    moto.create_bucket("bucket-one")
    moto.put("bucket-one", "done.txt", b"same", metadata={"marker": "original"})
    write(root / "bucket-one" / "done.txt", b"same")
    uploader, cli = recorded_uploader(root, moto, one_cli)
    stats = uploader.scan_once()
    assert (stats.present, stats.uploaded) == (0, 1)
    assert tree(root) == []
    assert cli.commands() == ["s3 cp", "s3api list-objects-v2"]
    assert moto.head("bucket-one", "done.txt")["Metadata"] == {}


def test_same_size_rewrite_is_uploaded_not_deleted(root: Path, moto: Moto, one_cli: str) -> None:
    """The lookup before the upload finds an object of the same size: its content decides."""
    moto.create_bucket("bucket-one")
    moto.put("bucket-one", "state.json", b'{"v": 1}')
    write(root / "bucket-one" / "state.json", b'{"v": 2}')
    uploader, cli = recorded_uploader(root, moto, one_cli)
    uploader.suspect([("bucket-one", "state.json")])  # a small new key is not looked up
    stats = uploader.scan_once()
    assert (stats.uploaded, stats.present) == (1, 0)
    assert moto.get("bucket-one", "state.json") == b'{"v": 2}'
    assert tree(root) == []
    assert cli.commands()[:3] == ["s3api list-objects-v2", "s3api head-object", "s3 cp"]


@pytest.mark.slow
def test_multipart_file_is_verified(root: Path, moto: Moto, aws_cli: str) -> None:
    moto.create_bucket("bucket-one")
    data = os.urandom(9 * MIB + 17)
    write(root / "bucket-one" / "big.bin", data)
    stats = make_uploader(root, moto, aws_cli).scan_once()
    assert stats.uploaded == 1
    assert str(moto.head("bucket-one", "big.bin")["ETag"]).endswith('-2"')
    assert moto.get("bucket-one", "big.bin") == data
    assert tree(root) == []
    # the same bytes again: proven present through the multipart ETag, not re-uploaded
    write(root / "bucket-one" / "big.bin", data)
    stats = make_uploader(root, moto, aws_cli).scan_once()
    assert (stats.present, stats.uploaded) == (1, 0)


@pytest.mark.slow
def test_a_layout_it_cannot_prove_falls_back_once_to_sha256(
    root: Path, moto: Moto, one_cli: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI cuts 10,000,000-byte parts (the profile changed after the daemon read it):
    no MiB-sized guess explains the ETag, so the file goes once through the per-file
    upload that stores its SHA-256, and is deleted on that proof, not uploaded forever."""
    config = tmp_path / "edited-config"
    config.write_text("[default]\ns3 =\n  multipart_chunksize = 10000000\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    moto.create_bucket("bucket-one")
    data = os.urandom(25 * MIB)
    write(root / "bucket-one" / "big.bin", data)
    stats = make_uploader(root, moto, one_cli).scan_once()  # its Config has the defaults
    assert (stats.uploaded, stats.failed) == (1, 0)
    assert tree(root) == []
    head = moto.head("bucket-one", "big.bin")
    assert str(head["ETag"]).endswith('-3"')
    assert head["Metadata"] == {SHA256_METADATA: hashlib.sha256(data).hexdigest()}


def test_clocks_that_disagree(
    root: Path, moto: Moto, one_cli: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An mtime an hour in the future is reported as such and uploaded once the daemon has
    seen the file unchanged for the window; an mtime set into the past waits for its ctime."""
    caplog.set_level(logging.INFO)
    moto.create_bucket("bucket-one")
    future = write(root / "bucket-one" / "future.txt", b"from a clock ahead", mtime=None)
    ahead = time.time() + 3600
    os.utime(future, (ahead, ahead))
    write(root / "bucket-one" / "touched.txt", b"touch -d an hour ago")  # ctime: now
    started = time.monotonic()
    stats = make_uploader(root, moto, one_cli, stability=1).scan_once()
    assert (stats.uploaded, stats.unstable) == (2, 0)
    assert time.monotonic() - started >= 1  # waited out the window, on its own clock
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("future.txt: modified 3600s in the future" in m for m in warned)
    assert tree(root) == []


@pytest.mark.parametrize("policy", ["overwrite", "keep"])
def test_an_object_with_other_content_is_overwritten_loudly_or_kept(
    root: Path, moto: Moto, one_cli: str, policy: str, caplog: pytest.LogCaptureFixture
) -> None:
    moto.create_bucket("shared-bucket")
    moto.put("shared-bucket", "state.json", b'{"from": "another instance"}')
    write(root / "shared-bucket" / "state.json", b'{"v": 2}')
    uploader = make_uploader(root, moto, one_cli, if_exists=policy)
    if policy == "overwrite":  # a new small key is looked up only under --if-exists keep
        uploader.suspect([("shared-bucket", "state.json")])
    stats = uploader.scan_once()
    lines = [(r.levelno, r.getMessage()) for r in caplog.records if "state.json" in r.getMessage()]
    sizes = "S3 28 bytes, local 8 bytes"
    if policy == "overwrite":
        assert (stats.uploaded, stats.failed) == (1, 0)
        assert moto.get("shared-bucket", "state.json") == b'{"v": 2}'
        assert lines[0][0] == logging.WARNING and sizes in lines[0][1]
        assert tree(root) == []
    else:
        assert (stats.uploaded, stats.failed) == (0, 1)
        assert moto.get("shared-bucket", "state.json") == b'{"from": "another instance"}'
        assert lines == [(logging.ERROR, lines[0][1])] and "--if-exists keep" in lines[0][1]
        assert sizes in lines[0][1]
        assert tree(root) == ["shared-bucket/state.json"]


@pytest.mark.slow
def test_bad_buckets_are_kept_while_others_proceed(
    root: Path, moto: Moto, one_cli: str, caplog: pytest.LogCaptureFixture
) -> None:
    moto.create_bucket("good-bucket")
    write(root / "good-bucket" / "ok.txt", b"ok")
    write(root / "missing-bucket" / "kept.txt", b"kept")
    write(root / "distributed_colony" / "kept.txt", b"kept")
    with caplog.at_level(logging.INFO):
        stats = make_uploader(root, moto, one_cli).scan_once()
    assert stats.uploaded == 1
    assert stats.failed == 2
    assert tree(root) == ["distributed_colony/kept.txt", "missing-bucket/kept.txt"]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("missing-bucket" in m and "bucket does not exist" in m for m in errors)
    assert any("distributed_colony" in m and "invalid bucket name" in m for m in errors)


NAMES = [
    "with space.txt",
    "ünïcødé-雪.txt",
    "plus+sign.txt",
    "per%20cent.txt",
    "hash#tag.txt",
    "[bracket].txt",
    "star*.txt",
    "question?.txt",
    "--recursive",
    "-x; rm -rf ~",
    "dir with space/inner.txt",
]


def test_awkward_names_and_empty_files(root: Path, moto: Moto, aws_cli: str) -> None:
    moto.create_bucket("names")
    for name in NAMES:
        write(root / "names" / name, name.encode())
    write(root / "names" / "empty.txt", b"")
    stats = make_uploader(root, moto, aws_cli).scan_once()
    assert stats.failed == 0
    assert moto.keys("names") == sorted([*NAMES, "empty.txt"])
    for name in NAMES:
        assert moto.get("names", name) == name.encode()
    assert moto.get("names", "empty.txt") == b""
    assert tree(root) == []


def test_symlinks_are_not_followed_and_targets_survive(
    root: Path, tmp_path: Path, moto: Moto, aws_cli: str
) -> None:
    moto.create_bucket("links")
    outside = write(tmp_path / "outside" / "secret.txt", b"secret")
    inside = write(root / "links" / "real.txt", b"real")
    (root / "links" / "to-outside.txt").symlink_to(outside)
    (root / "links" / "to-outside-dir").symlink_to(outside.parent)
    (root / "links" / "to-inside.txt").symlink_to(inside)
    stats = make_uploader(root, moto, aws_cli).scan_once()
    assert moto.keys("links") == ["real.txt"]
    assert stats.uploaded == 1
    assert outside.read_bytes() == b"secret"
    assert sorted(p.name for p in (root / "links").iterdir()) == [
        "to-inside.txt",
        "to-outside-dir",
        "to-outside.txt",
    ]


def test_dry_run_changes_nothing(root: Path, moto: Moto, one_cli: str) -> None:
    moto.create_bucket("bucket-one")
    moto.put("bucket-one", "present.txt", b"here")
    write(root / "bucket-one" / "present.txt", b"here")
    write(root / "bucket-one" / "new.txt", b"new")
    make_uploader(root, moto, one_cli, dry_run=True).scan_once()
    assert tree(root) == ["bucket-one/new.txt", "bucket-one/present.txt"]
    assert moto.keys("bucket-one") == ["present.txt"]
    assert not StateDir(root).path.exists()


def _item(key: str, size: int) -> Candidate:
    return Candidate(Path("/r/b") / key, "b", key, size, 0)


@pytest.mark.parametrize(
    ("sizes", "max_files", "max_bytes", "chunks"),
    [
        ([1, 1, 1, 1, 1], 2, 100, [2, 2, 1]),
        ([60, 30, 20, 5], 10, 100, [2, 2]),  # 60+30, then 20+5
        ([500, 1, 1], 10, 100, [1, 2]),  # a file over the byte cap is a chunk of its own
        ([], 10, 100, []),
    ],
)
def test_chunked(sizes: list[int], max_files: int, max_bytes: int, chunks: list[int]) -> None:
    files = [_item(f"k{i}", size) for i, size in enumerate(sizes)]
    done = uploader_module.chunked(list(reversed(files)), max_files, max_bytes)
    assert [len(c) for c in done] == chunks
    assert [i for c in done for i in c] == files  # in key order


@pytest.mark.slow
def test_a_backlog_drains_chunk_by_chunk(
    root: Path, moto: Moto, one_cli: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each chunk is uploaded, verified and deleted before the next one is uploaded."""
    monkeypatch.setattr(uploader_module, "MAX_CHUNK_FILES", 2)
    moto.create_bucket("backlog")
    for i in range(5):
        write(root / "backlog" / f"f{i}.txt", f"file {i}".encode())
    seen: list[tuple[str, int]] = []

    def watched(args: list[str]) -> None:
        seen.append((" ".join(args[:2]), len(tree(root))))  # and the real CLI runs

    uploader = make_uploader(root, moto, one_cli, answer=watched)
    stats = uploader.scan_once()
    assert (stats.uploaded, stats.failed) == (5, 0)
    assert tree(root) == []
    # cp and its proof per chunk; each cp starts with the earlier chunks gone
    assert [n for what, n in seen if what == "s3 cp"] == [5, 3, 1]
    assert [what for what, _ in seen].count("s3api list-objects-v2") == 3


@pytest.mark.parametrize(
    ("how", "calls"),
    [
        ("proof", ["s3 cp", "s3api list-objects-v2"]),  # cp's own errors, then the listing's
        ("lookup", ["s3api list-objects-v2"]),  # a dry run looks every file up
        ("opaque", ["s3 cp", "s3api list-objects-v2"]),  # then learned to be KMS: one by one
    ],
)
def test_a_missing_bucket_s_later_chunks_make_no_aws_call(
    root: Path,
    moto: Moto,
    one_cli: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    how: str,
    calls: list[str],
) -> None:
    """Once a listing said the bucket does not exist, its other chunks wait for the next
    scan, without aws calls of their own (100,000 files: 10 chunks); nothing of it
    outlives the scan."""
    monkeypatch.setattr(uploader_module, "MAX_CHUNK_FILES", 2)
    for i in range(5):
        write(root / "no-such-bucket" / f"f{i}.txt", f"file {i}".encode())
    options: dict[str, Any] = {"dry_run": True} if how == "lookup" else {}
    uploader, cli = recorded_uploader(root, moto, one_cli, **options)
    stats = uploader.scan_once()
    assert (stats.uploaded, stats.failed) == (0, 5)
    assert len(tree(root)) == 5  # all kept
    assert cli.commands() == calls  # the first chunk's alone
    said = [r.getMessage() for r in caplog.records if "3 files stay local" in r.getMessage()]
    assert said == [
        "s3://no-such-bucket: cannot list (bucket does not exist, said earlier in this scan): "
        "not tried; 3 files stay local"
    ]
    if how == "lookup":
        return
    # the next scan looks the first chunk's files up (their upload failed) and finds no
    # bucket: a new file beside them in that chunk is not sent either
    write(root / "no-such-bucket" / "a-new.txt", b"new")
    if how == "opaque":  # its files would go one by one, each a cp of its own
        uploader.opaque.add("no-such-bucket")
    cli.calls.clear()
    assert uploader.scan_once().failed == 6
    assert cli.commands() == ["s3api list-objects-v2"]
    if how == "opaque":
        return
    moto.create_bucket("no-such-bucket")  # made meanwhile: the next scan moves them all
    assert uploader.scan_once().uploaded == 6 and tree(root) == []


def test_a_bucket_s_other_listing_errors_leave_each_chunk_its_calls(
    root: Path, moto: Moto, one_cli: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a missing bucket stops its chunks: a listing denied (a policy may allow some
    prefixes only) or failing otherwise says nothing of the next chunk's."""
    monkeypatch.setattr(uploader_module, "MAX_CHUNK_FILES", 2)
    moto.create_bucket("denied")
    for i in range(5):
        write(root / "denied" / f"f{i}.txt", f"file {i}".encode())

    def denied(args: list[str]) -> Result | None:
        if args[:2] == ["s3api", "list-objects-v2"]:
            return Result(
                254,
                "",
                "An error occurred (AccessDenied) when calling the "
                "ListObjectsV2 operation: Access Denied",
            )
        return None  # the real CLI runs

    uploader, cli = recorded_uploader(root, moto, one_cli, answer=denied)
    stats = uploader.scan_once()
    assert (stats.uploaded, stats.failed) == (0, 5)
    assert len(tree(root)) == 5  # unproven: kept
    assert cli.commands() == ["s3 cp", "s3api list-objects-v2"] * 3


def test_an_upload_that_timed_out_is_looked_up_before_the_next_one(
    root: Path, moto: Moto, one_cli: str
) -> None:
    """A killed `aws s3 cp` may have stored some bytes: the next scan asks S3 for those keys
    before uploading them again (a new small file is otherwise not looked up)."""
    moto.create_bucket("bucket-one")
    write(root / "bucket-one" / "a.txt", b"a")
    faults = [AwsCliError(["s3", "cp"], None, "no progress for 60 s")]

    def stalls_once(args: list[str]) -> None:
        if args[:2] == ["s3", "cp"] and faults:
            raise faults.pop()

    uploader, cli = recorded_uploader(root, moto, one_cli, answer=stalls_once)
    stats = uploader.scan_once()
    assert (stats.uploaded, stats.failed) == (0, 1)
    assert cli.commands() == ["s3 cp"]
    assert tree(root) == ["bucket-one/a.txt"]
    cli.calls.clear()
    stats = uploader.scan_once()
    assert (stats.uploaded, stats.failed) == (1, 0)
    assert cli.commands() == ["s3api list-objects-v2", "s3 cp", "s3api list-objects-v2"]
    assert tree(root) == []
