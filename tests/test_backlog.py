"""The backlog: what still waits per top-level directory, by the scan's own walk and rules."""

from __future__ import annotations

import os
from pathlib import Path

from helpers import OLD, write

from awscli_uploader.config import Config
from awscli_uploader.local.filters import parse_bucket_map, parse_excludes
from awscli_uploader.local.state import StateDir
from awscli_uploader.model import NS
from awscli_uploader.ops.backlog import backlog

T = int(OLD)
NOW = (T + 100) * NS


def test_counts_files_bytes_unstable_and_the_oldest(root: Path) -> None:
    write(root / "bucket-a" / "x" / "old.bin", b"12345", mtime=T - 50)
    write(root / "bucket-a" / "new.bin", b"123", mtime=T + 99.5)  # 0.5 s before NOW
    (root / "empty-bucket").mkdir()
    items = {b.directory: b for b in backlog(Config(root=root, stability=2), now_ns=NOW)}
    a = items["bucket-a"]
    assert (a.files, a.bytes, a.unstable) == (2, 8, 1)
    assert a.oldest_age(NOW) == 150.0
    empty = items["empty-bucket"]
    assert (empty.files, empty.oldest_age(NOW)) == (0, 0.0)


def test_leaves_out_what_the_scan_leaves_out(root: Path, tmp_path: Path) -> None:
    write(root / "top-level.txt", b"no bucket")
    write(StateDir(root).staging("b") / "k", b"state")
    write(root / "bucket-a" / "keep.txt", b"1")
    write(root / "bucket-a" / "skip.tmp", b"22")
    write(root / "bucket-a" / "tmp" / "inner.txt", b"333")
    write(tmp_path / "outside.txt", b"4444")
    os.symlink(tmp_path / "outside.txt", root / "bucket-a" / "link.txt")
    os.symlink(tmp_path, root / "linked-bucket")
    config = Config(root=root, excludes=parse_excludes(["*.tmp", "bucket-a/tmp/"]))
    items = backlog(config, now_ns=NOW)
    assert [(b.directory, b.files, b.bytes) for b in items] == [("bucket-a", 1, 1)]


def test_names_the_bucket_and_the_problem(root: Path) -> None:
    write(root / "distributed_colony" / "a.png", b"png")
    write(root / "lab_notes" / "n.txt", b"n")
    config = Config(root=root, bucket_map=parse_bucket_map(["distributed_colony=colony-b"]))
    items = {b.directory: b for b in backlog(config, now_ns=NOW)}
    assert (items["distributed_colony"].bucket, items["distributed_colony"].problem) == (
        "colony-b",
        None,
    )
    assert "invalid bucket name" in (items["lab_notes"].problem or "")


def test_unreadable_root_is_an_empty_backlog(tmp_path: Path) -> None:
    assert backlog(Config(root=tmp_path / "missing"), now_ns=NOW) == []
