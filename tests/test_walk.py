"""The shared walk: what it yields, what it never enters."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from helpers import scandirs, write

from awscli_uploader.local.filters import Excludes, parse_excludes
from awscli_uploader.local.walk import QUIET_MAX_NS, Deferred, top_level, walk_below


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
    assert not any(deferred.until.values())  # due: dropped, the scan defers it again if it must


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


S = 10**9


def _quiet_tree(root: Path, x_due: int = 100, y_due: int = 100) -> tuple[Path, Deferred, int]:
    """b/d holding two files deferred (x `x_due` s ahead, y `y_due` s) and a directory with
    a ready file; the passes run as if 10 s later than now, so that d's last change is
    outside the racy window. One pass made, which noted d."""
    d = root / "b" / "d"
    write(d / "x", b"1")
    write(d / "y", b"2")
    write(d / "sub" / "z", b"3")
    now = time.time_ns() + 10 * S
    deferred = Deferred()
    deferred.defer(root / "b", "d/x", now + x_due * S)
    deferred.defer(root / "b", "d/y", now + y_due * S)
    deferred.finish_pass()
    nodes, listed = _pass(root, deferred, now)
    assert nodes == [("deferred", "d/", 2), ("entry", "d/sub/z", 1)]
    assert d in listed and list(deferred.quiet) == [str(d)]
    return d, deferred, now


def _pass(
    root: Path, deferred: Deferred, now: int, excludes: Excludes | None = None
) -> tuple[list[tuple[str, str, int]], list[Path]]:
    """One pass of the walk (the scan's own start_pass before it, finish_pass after it):
    what it yielded and the directories it listed."""
    nodes, listed = _pass_in_detail(root, deferred, now, excludes)
    return [node[:3] for node in nodes], listed


def _pass_in_detail(
    root: Path, deferred: Deferred, now: int, excludes: Excludes | None = None
) -> tuple[list[tuple[str, str, int, str]], list[Path]]:
    """_pass, each node with its detail (the exclude pattern)."""
    deferred.start_pass(now)  # as the scan's plan does
    with scandirs() as listed:
        nodes = sorted(
            (n.kind.value, n.key, n.files, n.detail)
            for n in walk_below(root / "b", excludes, deferred=deferred, now_ns=now)
        )
    deferred.finish_pass()
    return nodes, listed


def test_a_quiet_directory_is_not_listed_again_while_unchanged(root: Path) -> None:
    """Its files are counted from the note, its directories still walked."""
    d, deferred, now = _quiet_tree(root)
    for later in (now + S, now + 50 * S):
        nodes, listed = _pass(root, deferred, later)
        assert nodes == [("deferred", "d/", 2), ("entry", "d/sub/z", 1)]
        assert listed == [root / "b", d / "sub"]
    assert len(deferred.quiet[str(d)].held) == 2
    assert not any(deferred.until.values())  # held by the note alone, not key by key


@pytest.mark.parametrize("change", ["added", "removed", "renamed in", "renamed out"])
def test_a_quiet_directory_that_changed_is_listed_again(root: Path, change: str) -> None:
    d, deferred, now = _quiet_tree(root)
    # past the clock tick of the noting pass: where file times are that coarse (a jiffy,
    # up to 10 ms) a change within it would keep the directory's times
    time.sleep(0.02)
    if change == "added":
        write(d / "new", b"n")
    elif change == "removed":
        (d / "x").unlink()
    elif change == "renamed in":
        write(root / "b" / "elsewhere", b"e")
        os.rename(root / "b" / "elsewhere", d / "x")  # a new file under a deferred name
    else:
        os.rename(d / "y", root / "b" / "moved")
    nodes, listed = _pass(root, deferred, now + S)
    assert d in listed
    expected = {
        "added": [("deferred", "d/", 2), ("entry", "d/new", 1)],
        "removed": [("deferred", "d/", 1)],
        # a file renamed in has a new ctime: it can't be ready before the name's time
        "renamed in": [("deferred", "d/", 2)],
        "renamed out": [("deferred", "d/", 1), ("entry", "moved", 1)],
    }[change]
    assert nodes == sorted([*expected, ("entry", "d/sub/z", 1)])


def test_a_quiet_directory_is_listed_again_once_its_first_file_is_due(root: Path) -> None:
    """Due when x is: listed; x is stat'ed, y still held by the time the note kept."""
    d, deferred, now = _quiet_tree(root, x_due=5)
    assert _pass(root, deferred, now + S)[1] == [root / "b", d / "sub"]
    nodes, listed = _pass(root, deferred, now + 5 * S)
    assert d in listed
    assert nodes == [("deferred", "d/", 1), ("entry", "d/sub/z", 1), ("entry", "d/x", 1)]


def test_a_quiet_directory_is_listed_when_its_note_ends_and_its_files_stay_held(
    root: Path,
) -> None:
    """A note lives ten minutes at most, from when it was made: then the directory is
    listed, its files still held by their own times (none stat'ed), and noted again."""
    d, deferred, now = _quiet_tree(root, x_due=2000, y_due=2000)
    assert _pass(root, deferred, now + QUIET_MAX_NS - S)[1] == [root / "b", d / "sub"]
    nodes, listed = _pass(root, deferred, now + QUIET_MAX_NS)
    assert d in listed
    assert nodes == [("deferred", "d/", 2), ("entry", "d/sub/z", 1)]
    assert deferred.quiet[str(d)].until == now + 2 * QUIET_MAX_NS


@pytest.mark.parametrize("mtime", ["now", "set back"])
def test_a_directory_changed_within_the_racy_window_is_not_noted(root: Path, mtime: str) -> None:
    """A change within the times' granularity of the last may leave them as they were: a
    directory changed under 2 s ago is listed at every pass, even with its mtime set back
    (`cp -a`, `tar`: its ctime tells)."""
    write(root / "b" / "d" / "x", b"1")
    if mtime == "set back":
        os.utime(root / "b" / "d", ns=(time.time_ns() - 60 * S,) * 2)
    now = os.stat(root / "b" / "d").st_ctime_ns + S  # the passes: 1 s after its last change
    deferred = Deferred()
    deferred.defer(root / "b", "d/x", now + 100 * S)
    deferred.finish_pass()
    for _ in range(2):
        nodes, listed = _pass(root, deferred, now)
        assert nodes == [("deferred", "d/", 1)] and root / "b" / "d" in listed
    assert deferred.quiet == {}


def test_an_excluded_entry_is_held_by_its_quiet_directory(root: Path) -> None:
    """Exclusion goes by name: while the directory is unchanged its excluded entries are
    counted from the note, by pattern, unlisted."""
    write(root / "b" / "d" / "x", b"1")
    write(root / "b" / "d" / "x.part", b"2")
    now = time.time_ns() + 10 * S
    deferred = Deferred()
    deferred.defer(root / "b", "d/x", now + 100 * S)
    deferred.finish_pass()
    excludes = parse_excludes(["*.part"])
    nodes, listed = _pass(root, deferred, now, excludes)
    assert nodes == [("deferred", "d/", 1), ("excluded", "d/x.part", 1)]
    assert root / "b" / "d" in listed
    for later in (now + S, now + 50 * S):
        nodes, listed = _pass(root, deferred, later, excludes)
        assert nodes == [("deferred", "d/", 1), ("quiet-excluded", "d/", 1)]
        assert listed == [root / "b"]


def _excluded_tree(root: Path) -> tuple[Path, Deferred, Excludes, int]:
    """b/d holding only excluded entries (two files by one pattern, a directory by
    another) and a subdirectory walked as usual; one pass made, which noted d."""
    d = root / "b" / "d"
    write(d / "a.part", b"1")
    write(d / "b.part", b"2")
    write(d / "tmp" / "t", b"3")
    write(d / "sub" / "z.part", b"4")
    excludes = parse_excludes(["*.part", "tmp/"])
    now = time.time_ns() + 10 * S
    deferred = Deferred()
    nodes, listed = _pass(root, deferred, now, excludes)
    assert nodes == [
        ("excluded", "d/a.part", 1),
        ("excluded", "d/b.part", 1),
        ("excluded", "d/sub/z.part", 1),
        ("excluded", "d/tmp", 1),
    ]
    assert d in listed and sorted(deferred.quiet) == [str(d), str(d / "sub")]
    return d, deferred, excludes, now


def test_a_directory_of_excluded_entries_is_not_listed_again_while_unchanged(
    root: Path,
) -> None:
    d, deferred, excludes, now = _excluded_tree(root)
    for later in (now + S, now + QUIET_MAX_NS - S):  # no file of it is ever due
        nodes, listed = _pass_in_detail(root, deferred, later, excludes)
        assert nodes == [
            ("quiet-excluded", "d/", 1, "tmp/"),
            ("quiet-excluded", "d/", 2, "*.part"),
            ("quiet-excluded", "d/sub/", 1, "*.part"),
        ]
        assert listed == [root / "b"]
    # a note lives ten minutes at most: a change its times missed is found then
    capped, listed = _pass(root, deferred, now + QUIET_MAX_NS, excludes)
    assert d in listed and d / "sub" in listed
    assert capped == [
        ("excluded", "d/a.part", 1),
        ("excluded", "d/b.part", 1),
        ("excluded", "d/sub/z.part", 1),
        ("excluded", "d/tmp", 1),
    ]
    assert sorted(deferred.quiet) == [str(d), str(d / "sub")]  # noted again


@pytest.mark.parametrize("change", ["added", "removed", "renamed into place"])
def test_a_directory_of_excluded_entries_that_changed_is_listed_again(
    root: Path, change: str
) -> None:
    d, deferred, excludes, now = _excluded_tree(root)
    time.sleep(0.02)  # past the noting pass's clock tick (see above)
    if change == "added":
        write(d / "c.png", b"ready")
    elif change == "removed":
        (d / "a.part").unlink()
    else:
        os.rename(d / "a.part", d / "a")  # a writer's temporary name, then its own
    nodes, listed = _pass(root, deferred, now + S, excludes)
    assert d in listed
    expected = {
        "added": [("entry", "d/c.png", 1), ("excluded", "d/a.part", 1)],
        "removed": [],
        "renamed into place": [("entry", "d/a", 1)],
    }[change]
    unchanged = [("excluded", "d/b.part", 1), ("excluded", "d/tmp", 1)]
    assert nodes == sorted([*expected, *unchanged, ("quiet-excluded", "d/sub/", 1)])


def test_a_directory_of_excluded_entries_changed_within_the_racy_window_is_not_noted(
    root: Path,
) -> None:
    write(root / "b" / "d" / "x.part", b"1")
    now = os.stat(root / "b" / "d").st_ctime_ns + S  # 1 s after its last change
    deferred = Deferred()
    for _ in range(2):
        nodes, listed = _pass(root, deferred, now, parse_excludes(["*.part"]))
        assert nodes == [("excluded", "d/x.part", 1)] and root / "b" / "d" in listed
    assert deferred.quiet == {}


def test_excluded_entries_are_listed_again_with_their_first_file_due(root: Path) -> None:
    """A note of deferred and excluded entries lasts until its first deferred file is due;
    then the directory is listed and its excluded entries met one by one again."""
    d = root / "b" / "d"
    write(d / "x", b"1")
    write(d / "x.part", b"2")
    now = time.time_ns() + 10 * S
    deferred = Deferred()
    deferred.defer(root / "b", "d/x", now + 5 * S)
    deferred.finish_pass()
    excludes = parse_excludes(["*.part"])
    _pass(root, deferred, now, excludes)
    assert _pass(root, deferred, now + S, excludes)[1] == [root / "b"]
    nodes, listed = _pass(root, deferred, now + 5 * S, excludes)
    assert d in listed
    assert nodes == [("entry", "d/x", 1), ("excluded", "d/x.part", 1)]


def test_a_clock_that_steps_back_drops_every_deferral(root: Path) -> None:
    """Deferrals are wall-clock times: after a step back they would hold files far longer
    than their window, so every file is looked at again."""
    d, deferred, now = _quiet_tree(root)
    deferred.start_pass(now)
    deferred.start_pass(now - 3600 * S)
    assert deferred.until == {} and deferred.quiet == {}
    nodes, listed = _pass(root, deferred, now - 3600 * S)
    assert d in listed
    assert nodes == [("entry", "d/sub/z", 1), ("entry", "d/x", 1), ("entry", "d/y", 1)]
