"""The plan phase: which files are ready, and for which bucket and key.

The decisions are pure functions of names, sizes and times; the disk is read
only through the shared walk (walk.py), which never follows a symlink.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from ..config import Config
from ..local import state
from ..local.filters import BucketMap, Excludes, bucket_for
from ..local.walk import Deferred, NodeKind, top_level, walk_below
from ..model import NS, Candidate, SkipKind, Skipped
from ..names import key_problem

SKEW_NS = NS  # clocks less than a second apart count as one


class Readiness(NamedTuple):
    ready: bool
    reason: str = ""
    ready_in: float | None = None  # when waiting only on the ctime or the daemon's own clock
    skewed: bool = False  # its times are ahead of this clock


def readiness(
    *, mtime_ns: int, ctime_ns: int, now_ns: int, stability: float, unchanged_for: float
) -> Readiness:
    """Whether a file is done: written more than `stability` seconds ago by its mtime,
    and not changed since by its ctime (an mtime set into the past by `touch -d`, `cp -p`
    or `rsync -t` is not the last change), or seen unchanged that long by the daemon.

    An mtime or ctime in the future (another clock) can't tell; then only the daemon's
    own observation (`unchanged_for`, on its monotonic clock) can.
    """
    skew = max(mtime_ns, ctime_ns) - now_ns
    if skew > SKEW_NS:
        if unchanged_for > stability:
            return Readiness(True)
        return Readiness(
            False,
            f"modified {skew / NS:.0f}s in the future (a clock is off); "
            f"uploading once unchanged for {stability:g}s",
            stability - unchanged_for,
            skewed=True,
        )
    if not is_stable(mtime_ns=mtime_ns, now_ns=now_ns, stability=stability):
        age = max(0.0, (now_ns - mtime_ns) / NS)
        return Readiness(False, f"modified {age:.1f}s ago; waiting")
    changed = (now_ns - ctime_ns) / NS
    if changed > stability or unchanged_for > stability:
        return Readiness(True)
    return Readiness(
        False,
        f"changed {max(0.0, changed):.1f}s ago, though its mtime is older; waiting",
        stability - max(changed, unchanged_for),
    )


@dataclass
class Sightings:
    """What the daemon has seen of the files across scans: how long each has been
    unchanged, on its own monotonic clock, and which need no look before a time."""

    # by (device, inode): cheap to hash, unlike a Path (a scan of 100,000 files met each
    # key several times); a file replaced by another gets a new inode, so a new sighting
    seen: dict[tuple[int, int], tuple[tuple[int, int, int], float]] = field(default_factory=dict)
    _touched: set[tuple[int, int]] = field(default_factory=set)
    deferred: Deferred = field(default_factory=Deferred)  # files still being written

    def unchanged_for(self, info: os.stat_result, now: float) -> float:
        """Seconds this file has been seen unchanged (size, mtime, ctime) on this clock."""
        inode = (info.st_dev, info.st_ino)
        ident = (info.st_size, info.st_mtime_ns, info.st_ctime_ns)
        self._touched.add(inode)
        before = self.seen.get(inode)
        if before is None or before[0] != ident:
            self.seen[inode] = (ident, now)
            return 0.0
        return now - before[1]

    def forget_unseen(self) -> None:
        """After a full pass: forget the files it did not meet (gone, or uploaded)."""
        self.seen = {k: self.seen[k] for k in self._touched if k in self.seen}
        self._touched = set()


def is_stable(*, mtime_ns: int, now_ns: int, stability: float) -> bool:
    """A file is ready when it has not changed for more than `stability` seconds.

    An mtime on a whole second may come from a filesystem that keeps only
    seconds; the file may then be up to a second younger, so a second is added.
    """
    tolerance = NS if mtime_ns % NS == 0 else 0
    return now_ns - mtime_ns > stability * NS + tolerance


def not_before(info: os.stat_result, now_ns: int, stability: float) -> int | None:
    """When a file still being written by its mtime can be ready at the earliest (ns), or
    None when that is not certain: its times are ahead of this clock (only the daemon's
    sightings can tell), or it is done by its mtime. Any write, `touch -d` or rename into
    its name from now on sets a ctime after now, so it cannot be ready before this time;
    the walk need not stat it until then."""
    if max(info.st_mtime_ns, info.st_ctime_ns) - now_ns > SKEW_NS:
        return None
    if is_stable(mtime_ns=info.st_mtime_ns, now_ns=now_ns, stability=stability):
        return None
    tolerance = NS if info.st_mtime_ns % NS == 0 else 0
    return info.st_mtime_ns + int(stability * NS) + tolerance


def needs_sighting(info: os.stat_result, now_ns: int, stability: float) -> bool:
    """Whether the file's readiness can rest on the daemon's own sighting of it: its times
    are ahead of this clock, or its mtime is done but its ctime within the window. Files
    long done or still being written need none, so they cost the sightings no memory."""
    if max(info.st_mtime_ns, info.st_ctime_ns) - now_ns > SKEW_NS:
        return True
    settled = is_stable(mtime_ns=info.st_mtime_ns, now_ns=now_ns, stability=stability)
    return settled and now_ns - info.st_ctime_ns <= stability * NS


def classify_file(
    path: Path,
    bucket: str,
    key: str,
    info: os.stat_result,
    *,
    now_ns: int,
    stability: float,
    unchanged_for: float = 0.0,
) -> Candidate | Skipped:
    """What one entry below a bucket directory is: a candidate, or why it is skipped."""
    if stat.S_ISLNK(info.st_mode):
        return Skipped(path, SkipKind.IGNORED, "symlink; not followed", bucket)
    if not stat.S_ISREG(info.st_mode):
        return Skipped(path, SkipKind.IGNORED, "not a regular file", bucket)
    problem = key_problem(key)
    if problem is not None:
        return Skipped(path, SkipKind.INVALID, problem, bucket)
    ready = readiness(
        mtime_ns=info.st_mtime_ns,
        ctime_ns=info.st_ctime_ns,
        now_ns=now_ns,
        stability=stability,
        unchanged_for=unchanged_for,
    )
    if not ready.ready:
        kind = SkipKind.SKEWED if ready.skewed else SkipKind.UNSTABLE
        return Skipped(path, kind, ready.reason, bucket, ready.ready_in)
    return Candidate(path, bucket, key, info.st_size, info.st_mtime_ns)


def plan(config: Config, *, sightings: Sightings) -> list[Candidate | Skipped]:
    """The scan's plan for the configured root (see `scan`), at this moment."""
    now_ns = time.time_ns()
    sightings.deferred.start_pass(now_ns)
    found = list(
        scan(
            config.root,
            now_ns=now_ns,
            stability=config.stability,
            reserved=frozenset({state.NAME}),
            excludes=config.excludes,
            bucket_map=config.bucket_map,
            sightings=sightings,
        )
    )
    sightings.forget_unseen()
    sightings.deferred.finish_pass()
    return found


def scan(
    root: Path,
    *,
    now_ns: int,
    stability: float,
    reserved: frozenset[str] = frozenset(),
    excludes: Excludes | None = None,
    bucket_map: BucketMap | None = None,
    sightings: Sightings | None = None,
) -> Iterator[Candidate | Skipped]:
    """Walk `root/<bucket>/<key...>` and say, file by file, what is ready.

    Names in `reserved` directly under root are passed over silently. An
    excluded directory is reported once and not entered. With `sightings`, files
    still being written are noted with the time they can be ready at the earliest,
    and a pass after `plan` has finished this one counts them per directory, unstat'ed,
    until then.
    """
    try:
        top = top_level(root, reserved)
    except OSError as exc:
        yield Skipped(root, SkipKind.INVALID, f"cannot read root directory: {exc.strerror}")
        return
    for entry in top:
        path = Path(entry.path)
        is_dir = entry.is_dir(follow_symlinks=False)
        bucket, problem = bucket_for(entry.name, bucket_map) if is_dir else ("", None)
        if excludes and (pattern := excludes.match(entry.name, is_dir=is_dir)):
            yield Skipped(path, SkipKind.EXCLUDED, f"excluded by {pattern!r}")
        elif entry.is_symlink():
            yield Skipped(path, SkipKind.IGNORED, "bucket directory is a symlink; not followed")
        elif not is_dir:
            yield Skipped(path, SkipKind.IGNORED, "file directly under the root has no bucket")
        elif problem is not None:
            yield Skipped(path, SkipKind.INVALID, problem, bucket)
        else:
            yield from _bucket_files(path, bucket, now_ns, stability, excludes, sightings)


def _bucket_files(
    top: Path,
    bucket: str,
    now_ns: int,
    stability: float,
    excludes: Excludes | None,
    sightings: Sightings | None,
) -> Iterator[Candidate | Skipped]:
    now = time.monotonic()
    deferred = sightings.deferred if sightings is not None else None
    for node in walk_below(top, excludes, deferred=deferred, now_ns=now_ns):
        if node.kind is NodeKind.DEFERRED:
            reason = f"{node.files} files still being written; waiting (no stat before due)"
            yield Skipped(node.path, SkipKind.UNSTABLE, reason, bucket, files=node.files)
        elif node.kind is NodeKind.EXCLUDED:
            yield Skipped(node.path, SkipKind.EXCLUDED, f"excluded by {node.detail!r}", bucket)
        elif node.kind is NodeKind.QUIET_EXCLUDED:
            reason = f"{node.files} excluded by {node.detail!r} (directory unchanged, not listed)"
            yield Skipped(node.path, SkipKind.EXCLUDED, reason, bucket, files=node.files)
        elif node.kind is NodeKind.UNREADABLE or node.info is None:
            yield Skipped(node.path, SkipKind.INVALID, node.detail, bucket)
        else:
            sighted = sightings is not None and needs_sighting(node.info, now_ns, stability)
            seen = sightings.unchanged_for(node.info, now) if sightings and sighted else 0.0
            verdict = classify_file(
                node.path,
                bucket,
                node.key,
                node.info,
                now_ns=now_ns,
                stability=stability,
                unchanged_for=seen,
            )
            if (
                deferred is not None
                and isinstance(verdict, Skipped)
                and verdict.kind is SkipKind.UNSTABLE
            ):
                until = not_before(node.info, now_ns, stability)
                if until is not None:
                    deferred.defer(top, node.key, until)
            yield verdict
