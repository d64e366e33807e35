"""The shared walk: what it yields, what it never enters."""

from __future__ import annotations

import os
from pathlib import Path

from helpers import write

from awscli_uploader.local.filters import parse_excludes
from awscli_uploader.local.walk import top_level, walk_below


def test_walks_every_entry_and_never_follows_symlinks(root: Path, tmp_path: Path) -> None:
    write(root / "b" / "z.txt", b"z")
    write(root / "b" / "a" / "deep" / "x.txt", b"x")
    write(tmp_path / "elsewhere" / "secret.txt", b"s")
    os.symlink(tmp_path / "elsewhere", root / "b" / "m-link")
    nodes = list(walk_below(root / "b"))
    assert sorted((n.kind.value, n.key) for n in nodes) == [
        ("entry", "a/deep/x.txt"),
        ("entry", "m-link"),
        ("entry", "z.txt"),
    ]


def test_an_excluded_directory_is_reported_once_and_not_entered(root: Path) -> None:
    write(root / "b" / "tmp" / "1.txt", b"1")
    write(root / "b" / "tmp" / "2.txt", b"2")
    write(root / "b" / "keep.txt", b"k")
    nodes = list(walk_below(root / "b", parse_excludes(["b/tmp/"])))
    assert sorted((n.kind.value, n.key, n.detail) for n in nodes) == [
        ("entry", "keep.txt", ""),
        ("excluded", "tmp", "b/tmp/"),
    ]


def test_top_level_leaves_reserved_names_out(root: Path) -> None:
    (root / ".state").mkdir()
    (root / "b-2").mkdir()
    (root / "b-1").mkdir()
    assert [e.name for e in top_level(root, frozenset({".state"}))] == ["b-1", "b-2"]
