"""The plan phase: which files are ready, and for which bucket and key.

The decisions are pure functions of names, sizes and times; the disk is read
only through the shared walk (walk.py), which never follows a symlink.
"""

from __future__ import annotations

import enum
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from .config import STATE_DIR_NAME, Config
from .filters import BucketMap, Excludes, bucket_for
from .names import key_problem
from .walk import NodeKind, top_level, walk_below

NS = 1_000_000_000


class Candidate(NamedTuple):
    """A regular, stable file with a valid bucket and key."""

    path: Path
    bucket: str
    key: str
    size: int
    mtime_ns: int


class SkipKind(enum.Enum):
    UNSTABLE = "unstable"
    IGNORED = "ignored"
    INVALID = "invalid"
    EXCLUDED = "excluded"  # by an operator's --exclude: never uploaded, deleted or warned about


class Skipped(NamedTuple):
    path: Path
    kind: SkipKind
    reason: str
    bucket: str = ""  # the bucket its directory stands for, "" above any bucket


def is_stable(*, mtime_ns: int, now_ns: int, stability: float) -> bool:
    """A file is ready when it has not changed for more than `stability` seconds.

    An mtime on a whole second may come from a filesystem that keeps only
    seconds; the file may then be up to a second younger, so a second is added.
    """
    tolerance = NS if mtime_ns % NS == 0 else 0
    return now_ns - mtime_ns > stability * NS + tolerance


def classify_file(
    path: Path, bucket: str, key: str, info: os.stat_result, *, now_ns: int, stability: float
) -> Candidate | Skipped:
    """What one entry below a bucket directory is: a candidate, or why it is skipped."""
    if stat.S_ISLNK(info.st_mode):
        return Skipped(path, SkipKind.IGNORED, "symlink; not followed", bucket)
    if not stat.S_ISREG(info.st_mode):
        return Skipped(path, SkipKind.IGNORED, "not a regular file", bucket)
    problem = key_problem(key)
    if problem is not None:
        return Skipped(path, SkipKind.INVALID, problem, bucket)
    if not is_stable(mtime_ns=info.st_mtime_ns, now_ns=now_ns, stability=stability):
        age = max(0.0, (now_ns - info.st_mtime_ns) / NS)
        return Skipped(path, SkipKind.UNSTABLE, f"modified {age:.1f}s ago; waiting", bucket)
    return Candidate(path, bucket, key, info.st_size, info.st_mtime_ns)


def plan(config: Config, *, now_ns: int) -> Iterator[Candidate | Skipped]:
    """The scan's plan for the configured root (see `scan`)."""
    return scan(
        config.root,
        now_ns=now_ns,
        stability=config.stability,
        reserved=frozenset({STATE_DIR_NAME}),
        excludes=config.excludes,
        bucket_map=config.bucket_map,
    )


def scan(
    root: Path,
    *,
    now_ns: int,
    stability: float,
    reserved: frozenset[str] = frozenset(),
    excludes: Excludes | None = None,
    bucket_map: BucketMap | None = None,
) -> Iterator[Candidate | Skipped]:
    """Walk `root/<bucket>/<key...>` and say, file by file, what is ready.

    Names in `reserved` directly under root are passed over silently. An
    excluded directory is reported once and not entered.
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
            yield from _bucket_files(path, bucket, now_ns, stability, excludes)


def _bucket_files(
    top: Path, bucket: str, now_ns: int, stability: float, excludes: Excludes | None
) -> Iterator[Candidate | Skipped]:
    for node in walk_below(top, excludes):
        if node.kind is NodeKind.EXCLUDED:
            yield Skipped(node.path, SkipKind.EXCLUDED, f"excluded by {node.detail!r}", bucket)
        elif node.kind is NodeKind.UNREADABLE or node.info is None:
            yield Skipped(node.path, SkipKind.INVALID, node.detail, bucket)
        else:
            yield classify_file(
                node.path, bucket, node.key, node.info, now_ns=now_ns, stability=stability
            )
