"""What is still waiting under the root, per top-level directory: for `status` and the metrics.

A read-only walk with the scanner's rules (no symlink followed, the state
directory and excluded paths left out, files directly under the root have no
bucket and are not counted). It needs no AWS access and takes no lock.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from .filters import BucketMap, Excludes
from .scanner import NS, bucket_for, is_stable


@dataclass
class Backlog:
    directory: str
    bucket: str
    problem: str | None = None  # why its files can't be uploaded at all (invalid bucket name)
    files: int = 0
    bytes: int = 0
    unstable: int = 0
    oldest_mtime_ns: int | None = None

    def oldest_age(self, now_ns: int) -> float:
        """Seconds since the oldest waiting file was last written (0 with none)."""
        if self.oldest_mtime_ns is None:
            return 0.0
        return max(0.0, (now_ns - self.oldest_mtime_ns) / NS)

    def add(self, size: int, mtime_ns: int, *, stable: bool) -> None:
        self.files += 1
        self.bytes += size
        self.unstable += not stable
        if self.oldest_mtime_ns is None or mtime_ns < self.oldest_mtime_ns:
            self.oldest_mtime_ns = mtime_ns


def backlog(
    root: Path,
    *,
    now_ns: int,
    stability: float,
    reserved: frozenset[str] = frozenset(),
    excludes: Excludes | None = None,
    bucket_map: BucketMap | None = None,
) -> list[Backlog]:
    """One entry per bucket directory under `root` (empty ones too), by directory name."""
    found: list[Backlog] = []
    try:
        top = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError:
        return found
    for entry in top:
        if entry.name in reserved or not entry.is_dir(follow_symlinks=False):
            continue
        if excludes and excludes.match(entry.name, is_dir=True):
            continue
        bucket, problem = bucket_for(entry.name, bucket_map)
        item = Backlog(entry.name, bucket, problem)
        stack = [(Path(entry.path), entry.name)]
        while stack:
            directory, rel = stack.pop()
            try:
                entries = list(os.scandir(directory))
            except OSError:
                continue
            for child in entries:
                child_rel = f"{rel}/{child.name}"
                try:
                    info = child.stat(follow_symlinks=False)
                except OSError:
                    continue
                is_dir = stat.S_ISDIR(info.st_mode)
                if excludes and excludes.match(child_rel, is_dir=is_dir):
                    continue
                if is_dir:
                    stack.append((Path(child.path), child_rel))
                elif stat.S_ISREG(info.st_mode):
                    stable = is_stable(
                        mtime_ns=info.st_mtime_ns, now_ns=now_ns, stability=stability
                    )
                    item.add(info.st_size, info.st_mtime_ns, stable=stable)
        found.append(item)
    return found
