"""What is still waiting under the root, per top-level directory: for `status` and the metrics.

A read-only walk with the scan's own walk and rules (no symlink followed, the
state directory and excluded paths left out, files directly under the root
have no bucket and are not counted). It needs no AWS access and takes no lock.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path

from ..config import Config
from ..local import state
from ..local.filters import bucket_for
from ..local.walk import NodeKind, top_level, walk_below
from ..model import NS
from ..scan.plan import is_stable


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


def backlog(config: Config, *, now_ns: int) -> list[Backlog]:
    """One entry per bucket directory under the root (empty ones too), by directory name."""
    found: list[Backlog] = []
    try:
        top = top_level(config.root, frozenset({state.NAME}))
    except OSError:
        return found
    excludes = config.excludes
    for entry in top:
        if not entry.is_dir(follow_symlinks=False) or excludes.match(entry.name, is_dir=True):
            continue
        item = Backlog(entry.name, *bucket_for(entry.name, config.bucket_map))
        for node in walk_below(Path(entry.path), excludes):
            info = node.info
            if node.kind is NodeKind.ENTRY and info is not None and stat.S_ISREG(info.st_mode):
                stable = is_stable(
                    mtime_ns=info.st_mtime_ns, now_ns=now_ns, stability=config.stability
                )
                item.add(info.st_size, info.st_mtime_ns, stable=stable)
        found.append(item)
    return found
