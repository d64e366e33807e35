from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from types import SimpleNamespace
from unittest.mock import ANY

import pytest
from helpers import OLD, scandirs, write

from awscli_uploader.local.filters import parse_bucket_map, parse_excludes
from awscli_uploader.model import NS, Candidate, SkipKind, Skipped, of_skip
from awscli_uploader.scan.plan import (
    Sightings,
    is_stable,
    needs_sighting,
    not_before,
    readiness,
    scan,
)

NOW = (int(time.time()) + 3600) * NS  # an hour on: files written now are done by ctime too


@pytest.mark.parametrize(
    ("age_s", "mtime_fraction_ns", "stability", "stable"),
    [
        (10.0, 123, 2, True),
        (2.5, 123, 2, True),
        (1.5, 123, 2, False),
        (2.0, 0, 2, False),  # whole-second mtime: one second of tolerance
        (2.9, 0, 2, False),
        (3.1, 0, 2, True),
        (0.5, 123, 0, True),
        (-5.0, 123, 2, False),  # mtime in the future
    ],
)
def test_is_stable(age_s: float, mtime_fraction_ns: int, stability: float, stable: bool) -> None:
    mtime_ns = 1_700_000_000 * NS + mtime_fraction_ns
    now_ns = mtime_ns + int(age_s * NS)
    assert is_stable(mtime_ns=mtime_ns, now_ns=now_ns, stability=stability) is stable


def _by_path(root: Path) -> dict[str, Candidate | Skipped]:
    return {
        str(item.path.relative_to(root)): item
        for item in scan(root, now_ns=NOW, stability=2, reserved=frozenset({".state"}))
    }


def test_scan_maps_bucket_and_key(root: Path) -> None:
    write(root / "my-bucket" / "images" / "shot.png", b"png")
    write(root / "my-bucket" / "top.log", b"log")
    found = _by_path(root)
    assert found["my-bucket/images/shot.png"] == Candidate(
        root / "my-bucket/images/shot.png",
        "my-bucket",
        "images/shot.png",
        3,
        (root / "my-bucket/images/shot.png").stat().st_mtime_ns,
    )
    assert isinstance(found["my-bucket/top.log"], Candidate)
    assert found["my-bucket/top.log"].key == "top.log"


def test_scan_skips_what_is_not_a_candidate(root: Path, tmp_path: Path) -> None:
    write(root / "loose.txt", b"no bucket")
    write(root / "bad_bucket" / "f.txt", b"x")
    write(root / "ok-bucket" / "fresh.txt", b"x", mtime=NOW / NS - 0.5)
    outside = write(tmp_path / "outside.txt", b"secret")
    (root / "ok-bucket" / "link.txt").symlink_to(outside)
    (root / "ok-bucket" / "dirlink").symlink_to(tmp_path)
    (root / "linked-bucket").symlink_to(tmp_path)
    os.mkfifo(root / "ok-bucket" / "fifo")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(root / "ok-bucket" / "sock"))
        write(root / ".state" / "lock", b"")
        found = _by_path(root)
    kinds = {name: item.kind for name, item in found.items() if isinstance(item, Skipped)}
    assert kinds == {
        "loose.txt": SkipKind.IGNORED,
        "bad_bucket": SkipKind.INVALID,
        "ok-bucket/fresh.txt": SkipKind.UNSTABLE,
        "ok-bucket/link.txt": SkipKind.IGNORED,
        "ok-bucket/dirlink": SkipKind.IGNORED,
        "linked-bucket": SkipKind.IGNORED,
        "ok-bucket/fifo": SkipKind.IGNORED,
        "ok-bucket/sock": SkipKind.IGNORED,
    }
    assert not any(isinstance(item, Candidate) for item in found.values())


def test_scan_reports_bad_names_and_goes_on(root: Path) -> None:
    write(root / "b-1" / "ok.txt", b"1")
    write(root / "b-1" / "ctl\x01name", b"2")
    raw = os.fsencode(root / "b-1") + b"/bad\xff.txt"
    with open(raw, "wb") as handle:
        handle.write(b"3")
    os.utime(raw, (OLD, OLD))
    items = list(scan(root, now_ns=NOW, stability=2))
    candidates = [i.key for i in items if isinstance(i, Candidate)]
    invalid = [i.reason for i in items if isinstance(i, Skipped)]
    assert candidates == ["ok.txt"]
    assert sorted(invalid) == ["name contains control characters", "name is not valid UTF-8"]


def test_scan_of_unreadable_root_is_one_problem(tmp_path: Path) -> None:
    items = list(scan(tmp_path / "missing", now_ns=NOW, stability=2))
    assert [i.kind for i in items] == [SkipKind.INVALID]  # type: ignore[union-attr]


def test_scan_applies_excludes_and_the_bucket_map(root: Path) -> None:
    write(root / "distributed_colony" / "run" / "a.png", b"a")
    write(root / "distributed_colony" / "run" / "a.png.part", b"a")
    write(root / "distributed_colony" / "tmp" / "deep" / "many" / "x.bin", b"x")
    write(root / "distributed_colony" / "tmp" / "y.bin", b"y")
    write(root / ".DS_Store", b"")
    items = list(
        scan(
            root,
            now_ns=NOW,
            stability=2,
            excludes=parse_excludes(["*.part", "tmp/", ".*"]),
            bucket_map=parse_bucket_map(["distributed_colony=distributed-colony"]),
        )
    )
    candidates = [(i.bucket, i.key) for i in items if isinstance(i, Candidate)]
    assert candidates == [("distributed-colony", "run/a.png")]
    excluded = {
        str(i.path.relative_to(root)): i.reason
        for i in items
        if isinstance(i, Skipped) and i.kind is SkipKind.EXCLUDED
    }
    # an excluded directory is reported once and not entered
    assert excluded == {
        ".DS_Store": "excluded by '.*'",
        "distributed_colony/run/a.png.part": "excluded by '*.part'",
        "distributed_colony/tmp": "excluded by 'tmp/'",
    }


T = 1_800_000_000 * NS


@pytest.mark.parametrize(
    ("mtime", "ctime", "seen", "ready", "ready_in", "says"),
    [
        (-10, -10, 0.0, True, None, ""),  # written long ago
        (-1, -1, 0.0, False, None, "modified 1.0s ago"),  # being written
        (-10, -0.5, 0.0, False, 1.5, "changed 0.5s ago, though its mtime is older"),  # touch -d
        (-10, -0.5, 2.5, True, None, ""),  # ... but the daemon saw it unchanged long enough
        (3600, 3600, 0.0, False, 2.0, "modified 3600s in the future"),  # another clock
        (3600, 3600, 1.5, False, 0.5, "modified 3600s in the future"),
        (3600, 3600, 2.5, True, None, ""),  # seen unchanged for the window: ready
        (0.5, 0.5, 0.0, False, None, "modified 0.0s ago"),  # under a second ahead: one clock
        (-10, 5, 0.0, False, 2.0, "in the future"),  # ctime from a server's clock
    ],
)
def test_readiness(
    mtime: float, ctime: float, seen: float, ready: bool, ready_in: float | None, says: str
) -> None:
    found = readiness(
        mtime_ns=T + int(mtime * NS),
        ctime_ns=T + int(ctime * NS),
        now_ns=T,
        stability=2,
        unchanged_for=seen,
    )
    assert (found.ready, found.ready_in) == (ready, ready_in)
    assert says in found.reason


def test_sightings_restart_when_a_file_changes(tmp_path: Path) -> None:
    path = write(tmp_path / "f", b"1")
    sightings = Sightings()
    assert sightings.unchanged_for(os.lstat(path), 100.0) == 0.0
    assert sightings.unchanged_for(os.lstat(path), 103.0) == 3.0
    path.write_bytes(b"22")
    assert sightings.unchanged_for(os.lstat(path), 104.0) == 0.0
    sightings.forget_unseen()
    assert _inode(path) in sightings.seen
    sightings.forget_unseen()  # a pass that did not meet it
    assert sightings.seen == {}


def test_only_recently_changed_files_are_sighted(tmp_path: Path) -> None:
    """A backlog of finished files costs the scan no memory in its sightings."""
    old = write(tmp_path / "bucket-1" / "old.txt", b"done long ago")
    fresh = write(tmp_path / "bucket-1" / "fresh.txt", b"from a clock an hour ahead")
    os.utime(fresh, ns=(time.time_ns() + 3600 * NS,) * 2)
    later = time.time_ns() + 5 * NS  # both ctimes are now older than the window
    sightings = Sightings()
    found = list(scan(tmp_path, now_ns=later, stability=2, sightings=sightings))
    assert sorted(p.name for p in (f.path for f in found)) == ["fresh.txt", "old.txt"]
    assert list(sightings.seen) == [_inode(fresh)]
    assert _inode(old) not in sightings.seen


def _inode(path: Path) -> tuple[int, int]:
    info = os.lstat(path)
    return info.st_dev, info.st_ino


@pytest.mark.parametrize(
    ("mtime_ago", "ctime_ago", "sighted"),
    [
        (0.5, 0.5, False),  # still being written: waits on its mtime, whatever it is seen doing
        (60, 0.5, True),  # mtime set back (touch -d): the daemon's own sighting may decide
        (60, 60, False),  # long done: ready, no sighting to keep
        (-3600, -3600, True),  # from a clock an hour ahead: only the daemon's clock can tell
    ],
)
def test_needs_sighting(mtime_ago: float, ctime_ago: float, sighted: bool) -> None:
    now = 10_000 * NS
    info = SimpleNamespace(
        st_mtime_ns=now - int(mtime_ago * NS), st_ctime_ns=now - int(ctime_ago * NS)
    )
    assert needs_sighting(info, now, 2) is sighted  # type: ignore[arg-type]


def test_files_still_being_written_are_not_stated_again_before_they_can_be_ready(
    root: Path,
) -> None:
    for n in range(3):
        write(root / "b-1" / "run" / f"{n}.txt", b"x", mtime=None)
    sightings = Sightings()
    now = time.time_ns()

    def one_pass(now_ns: int) -> list[Candidate | Skipped]:
        found = list(scan(root, now_ns=now_ns, stability=60, sightings=sightings))
        sightings.deferred.finish_pass()
        return found

    first = one_pass(now)
    assert [(i.kind, i.files) for i in first if isinstance(i, Skipped)] == [
        (SkipKind.UNSTABLE, 1)
    ] * 3
    again = one_pass(now + 30 * NS)  # rewrites and renames into place only move it later
    assert again == [Skipped(root / "b-1" / "run", SkipKind.UNSTABLE, ANY, "b-1", files=3)]
    with scandirs() as listed:  # quiet: not even listed
        assert one_pass(now + 30 * NS) == again
    assert root / "b-1" / "run" not in listed and root / "b-1" in listed
    write(root / "b-1" / "run" / "new.txt", b"y", mtime=None)  # a new name is looked at
    assert sum(isinstance(i, Skipped) and i.files == 1 for i in one_pass(now + 31 * NS)) == 1
    due = one_pass(now + 62 * NS)  # its time has come: looked at, and ready
    assert sorted(i.key for i in due if isinstance(i, Candidate)) == [
        "run/0.txt",
        "run/1.txt",
        "run/2.txt",
        "run/new.txt",
    ]


def test_an_unchanged_directory_of_excluded_files_is_counted_unlisted(root: Path) -> None:
    """Exclusion goes by name, so a directory of excluded files, unchanged, is not listed
    again: its files count as excluded at every scan, one outcome a pattern."""
    for n in range(3):
        write(root / "b-1" / "run" / f"{n}.part", b"x")
    write(root / "b-1" / "ready.png", b"r")
    sightings = Sightings()

    def one_pass() -> list[Candidate | Skipped]:
        excludes = parse_excludes(["*.part"])
        found = list(scan(root, now_ns=NOW, stability=2, excludes=excludes, sightings=sightings))
        sightings.deferred.finish_pass()
        return found

    first = one_pass()
    assert sorted(i.path.name for i in first if isinstance(i, Skipped)) == [
        "0.part",
        "1.part",
        "2.part",
    ]
    with scandirs() as listed:
        again = one_pass()
    assert root / "b-1" / "run" not in listed
    skipped = [i for i in again if isinstance(i, Skipped)]
    assert skipped == [
        Skipped(
            root / "b-1" / "run",
            SkipKind.EXCLUDED,
            "3 excluded by '*.part' (directory unchanged, not listed)",
            "b-1",
            files=3,
        )
    ]
    assert of_skip(skipped[0]).files == 3  # counted as three, like the first scan's
    assert [i.key for i in again if isinstance(i, Candidate)] == ["ready.png"]


@pytest.mark.parametrize(
    ("mtime_ago", "ctime_ago", "until_after_mtime"),
    [
        (10.0, 10.0, None),  # done by its mtime: not deferred (its ctime rules)
        (1.5, 1.5, 2.0),
        (0.5, 0.0, 2.0),
        (-5.0, 0.0, None),  # ahead of this clock: only the daemon's sightings can tell
    ],
)
def test_not_before(mtime_ago: float, ctime_ago: float, until_after_mtime: float | None) -> None:
    now = 1_700_000_000 * NS + 123
    mtime, ctime = now - int(mtime_ago * NS), now - int(ctime_ago * NS)
    info = SimpleNamespace(st_mtime_ns=mtime, st_ctime_ns=ctime)
    until = not_before(info, now, 2.0)  # type: ignore[arg-type]
    expected = None if until_after_mtime is None else mtime + int(until_after_mtime * NS)
    assert until == expected
