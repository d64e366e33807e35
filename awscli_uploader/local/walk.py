"""The one read-only walk of the tree, shared by the scan and the backlog.

It streams with `os.scandir`, never follows a symlink, leaves reserved names
under the root alone, and does not enter an excluded directory. It stats an
entry only once its name has passed the filters (a directory, a symlink or a
regular file is told by the directory entry's type), builds a path object only
for what it yields, and passes over the files its caller knows need no look
before a later time (`Deferred`): an idle tree of 100,000 files costs little
more than `find` (README, Performance).
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from .filters import Excludes


class NodeKind(enum.Enum):
    ENTRY = "entry"  # anything but a directory, with its lstat
    EXCLUDED = "excluded"  # matched an exclude pattern (a directory is not entered)
    UNREADABLE = "unreadable"  # a directory that can't be listed, an entry that can't be stat'ed
    DEFERRED = "deferred"  # files of one directory passed over unstat'ed (`Deferred`)


class Node(NamedTuple):
    kind: NodeKind
    path: Path
    key: str  # below the top-level directory, with '/' (a directory's ends with '/')
    info: os.stat_result | None = None
    detail: str = ""  # the exclude pattern or the error
    files: int = 1  # how many files a DEFERRED node stands for


@dataclass
class Deferred:
    """Files that need no stat before a time (nanoseconds since the epoch), by top-level
    directory and key: the scan notes a file that can't be ready before then whatever
    happens to it (any write or replacement only moves that time later), and the walk
    passes it over until then. Only what a pass met again is kept for the next one."""

    until: dict[str, dict[str, int]] = field(default_factory=dict)
    _next: dict[str, dict[str, int]] = field(default_factory=dict)

    def defer(self, top: Path, key: str, until_ns: int) -> None:
        self._next.setdefault(os.fspath(top), {})[key] = until_ns

    def finish_pass(self) -> None:
        """After a full pass: what it met and deferred is what the next pass passes over."""
        self.until, self._next = self._next, {}

    def __len__(self) -> int:
        return sum(len(keys) for keys in self.until.values())


def top_level(root: Path, reserved: frozenset[str]) -> list[os.DirEntry[str]]:
    """The entries directly under the root, by name, reserved names left out.

    Raises OSError when the root can't be read.
    """
    return sorted(
        (entry for entry in os.scandir(root) if entry.name not in reserved),
        key=lambda e: e.name,
    )


def walk_below(
    top: Path,
    excludes: Excludes | None = None,
    *,
    deferred: Deferred | None = None,
    now_ns: int = 0,
) -> Iterator[Node]:
    """Every entry below the top-level directory `top`, depth first (no order promised);
    with `deferred`, the files it holds until after `now_ns` as one DEFERRED node a
    directory, unstat'ed, and kept deferred for the next pass."""
    held: dict[str, int] = {}
    kept: dict[str, int] = {}
    if deferred is not None and (held := deferred.until.get(os.fspath(top), {})):
        kept = deferred._next.setdefault(os.fspath(top), {})
    walk = _Walk(top.name, excludes, held, kept, now_ns)
    stack: list[tuple[Path, str]] = [(top, "")]
    while stack:
        yield from walk.directory(*stack.pop(), stack)


@dataclass
class _Walk:
    name: str  # the top-level directory's, which exclude patterns see
    excludes: Excludes | None
    held: dict[str, int]  # deferred keys, until when
    kept: dict[str, int]  # those still deferred in this pass
    now_ns: int

    def directory(
        self, directory: Path, prefix: str, stack: list[tuple[Path, str]]
    ) -> Iterator[Node]:
        """The entries of one directory (its directories go on `stack`)."""
        try:
            with os.scandir(directory) as listing:
                entries = list(listing)
        except FileNotFoundError:
            return  # vanished mid-walk: nothing left there
        except OSError as exc:
            detail = f"cannot read directory: {exc.strerror}"
            yield Node(NodeKind.UNREADABLE, directory, prefix, None, detail)
            return
        waiting = 0
        held, kept, now_ns = self.held, self.kept, self.now_ns  # locals: the hot loop
        for entry in entries:
            try:
                is_dir = entry.is_dir(follow_symlinks=False)  # the entry's type: no stat
            except OSError:
                is_dir = False
            key = prefix + entry.name
            until = held.get(key, 0) if held and not is_dir else 0
            if until > now_ns:
                kept[key] = until
                waiting += 1
                continue
            node = self._entry(entry, directory, key, is_dir, stack)
            if node is not None:
                yield node
        if waiting:
            yield Node(NodeKind.DEFERRED, directory, prefix, None, "", waiting)

    def _entry(
        self,
        entry: os.DirEntry[str],
        directory: Path,
        key: str,
        is_dir: bool,
        stack: list[tuple[Path, str]],
    ) -> Node | None:
        """What one entry is: excluded, a directory to enter, or a stat'ed entry."""
        if self.excludes:
            pattern = self.excludes.match(f"{self.name}/{key}", is_dir=is_dir)
            if pattern is not None:
                return Node(NodeKind.EXCLUDED, directory / entry.name, key, None, pattern)
        if is_dir:
            stack.append((directory / entry.name, key + "/"))
            return None
        try:
            info = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            return None
        except OSError as exc:
            detail = f"cannot stat: {exc.strerror}"
            return Node(NodeKind.UNREADABLE, directory / entry.name, key, None, detail)
        return Node(NodeKind.ENTRY, directory / entry.name, key, info)
