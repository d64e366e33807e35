"""The shared walk: what it yields, what it never enters."""

from __future__ import annotations

import os
from pathlib import Path

from helpers import write

from awscli_uploader.local.filters import parse_excludes
from awscli_uploader.local.walk import Deferred, top_level, walk_below


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


def test_a_deferred_file_is_counted_unstatted_until_it_is_due(root: Path) -> None:
    write(root / "b" / "d" / "later.txt", b"1")
    write(root / "b" / "d" / "now.txt", b"2")
    deferred = Deferred()
    deferred.defer(root / "b", "d/later.txt", 2_000)
    deferred.finish_pass()
    nodes = list(walk_below(root / "b", deferred=deferred, now_ns=1_000))
    assert sorted((n.kind.value, n.key, n.files) for n in nodes) == [
        ("deferred", "d/", 1),
        ("entry", "d/now.txt", 1),
    ]
    deferred.finish_pass()
    assert deferred.until == {str(root / "b"): {"d/later.txt": 2_000}}  # kept while met
    nodes = list(walk_below(root / "b", deferred=deferred, now_ns=2_000))
    assert sorted((n.kind.value, n.key) for n in nodes) == [
        ("entry", "d/later.txt"),
        ("entry", "d/now.txt"),
    ]
    deferred.finish_pass()
    assert len(deferred) == 0  # due: dropped, the scan defers it again if it must


def test_a_deferred_name_that_is_now_a_directory_is_entered(root: Path) -> None:
    write(root / "b" / "x" / "inner.txt", b"1")
    deferred = Deferred(until={str(root / "b"): {"x": 2_000}})
    nodes = list(walk_below(root / "b", deferred=deferred, now_ns=1_000))
    assert [(n.kind.value, n.key) for n in nodes] == [("entry", "x/inner.txt")]


def test_excluded_entries_are_not_stated(root: Path) -> None:
    write(root / "b" / "a.part", b"1")
    (root / "b" / "tmp").mkdir()
    nodes = list(walk_below(root / "b", parse_excludes(["*.part", "tmp/"])))
    assert sorted((n.kind.value, n.key, n.info) for n in nodes) == [
        ("excluded", "a.part", None),
        ("excluded", "tmp", None),
    ]
