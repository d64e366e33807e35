"""One scan against moto with the real AWS CLI (v1 and v2)."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest
from helpers import Moto, make_uploader, tree, write

from awscli_uploader.proof import Identity
from awscli_uploader.uploader import Action, decide, delete_if_unchanged, listing_prefixes

MIB = 1024 * 1024


@pytest.mark.parametrize(
    ("verdict", "uploaded", "action"),
    [
        (None, False, Action.UPLOAD),
        ("same", False, Action.DELETE),
        ("different", False, Action.UPLOAD),
        ("unprovable", False, Action.UPLOAD),
        ("same", True, Action.DELETE),
        ("different", True, Action.KEEP),
        ("unprovable", True, Action.KEEP),
        (None, True, Action.KEEP),
    ],
)
def test_decide(verdict: str | None, uploaded: bool, action: Action) -> None:
    from awscli_uploader.proof import Verdict

    assert decide(None if verdict is None else Verdict(verdict), uploaded=uploaded) is action


@pytest.mark.parametrize(
    ("keys", "prefixes"),
    [
        (["a/b/c.txt"], ["a/b/c.txt"]),
        (["run1/x", "run1/y"], ["run1/"]),
        (["images/1.png", "images/2.png", "logs/a.log"], ["images/", "logs/a.log"]),
        (["a", "b"], ["a", "b"]),
        (["a/1", "b/1", "c/1", "d/1", "e/1"], [""]),  # too many: list the whole bucket
    ],
)
def test_listing_prefixes(keys: list[str], prefixes: list[str]) -> None:
    assert listing_prefixes(keys) == prefixes


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


def test_already_present_is_deleted_without_upload(root: Path, moto: Moto, aws_cli: str) -> None:
    moto.create_bucket("bucket-one")
    moto._client().put_object(
        Bucket="bucket-one", Key="done.txt", Body=b"same", Metadata={"marker": "original"}
    )
    write(root / "bucket-one" / "done.txt", b"same")
    stats = make_uploader(root, moto, aws_cli).scan_once()
    assert (stats.present, stats.uploaded) == (1, 0)
    assert tree(root) == []
    # a re-upload would have replaced the object and dropped its metadata
    assert moto.head("bucket-one", "done.txt")["Metadata"] == {"marker": "original"}


def test_same_size_rewrite_is_uploaded_not_deleted(root: Path, moto: Moto, aws_cli: str) -> None:
    moto.create_bucket("bucket-one")
    moto.put("bucket-one", "state.json", b'{"v": 1}')
    write(root / "bucket-one" / "state.json", b'{"v": 2}')
    stats = make_uploader(root, moto, aws_cli).scan_once()
    assert (stats.uploaded, stats.present) == (1, 0)
    assert moto.get("bucket-one", "state.json") == b'{"v": 2}'
    assert tree(root) == []


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


def test_bad_buckets_are_kept_while_others_proceed(
    root: Path, moto: Moto, aws_cli: str, caplog: pytest.LogCaptureFixture
) -> None:
    moto.create_bucket("good-bucket")
    write(root / "good-bucket" / "ok.txt", b"ok")
    write(root / "missing-bucket" / "kept.txt", b"kept")
    write(root / "distributed_colony" / "kept.txt", b"kept")
    with caplog.at_level(logging.INFO):
        stats = make_uploader(root, moto, aws_cli).scan_once()
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
    assert not (root / ".awscli-uploader").exists()


def test_delete_only_the_file_that_was_verified(tmp_path: Path) -> None:
    path = write(tmp_path / "f", b"v1")
    identity = Identity.of(os.lstat(path))
    time.sleep(0.01)
    path.write_bytes(b"v2")
    assert delete_if_unchanged(path, identity) is not None
    assert path.read_bytes() == b"v2"
    replacement = write(tmp_path / "g", b"v1")
    identity = Identity.of(os.lstat(replacement))
    os.replace(write(tmp_path / "h", b"v1"), replacement)
    assert delete_if_unchanged(replacement, identity) is not None
    assert replacement.exists()
    assert delete_if_unchanged(replacement, Identity.of(os.lstat(replacement))) is None
    assert not replacement.exists()
