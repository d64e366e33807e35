"""The one read-only walk of the tree, shared by the scan and the backlog.

It streams with `os.scandir`, never follows a symlink, leaves reserved names
under the root alone, and does not enter an excluded directory. It stats an
entry only once its name has passed the filters (a directory, a symlink or a
regular file is told by the directory entry's type), builds a path object only
for what it yields, and passes over the files its caller knows need no look
before a later time (`Deferred`). A directory whose every file was passed over
so or excluded by its name, and which has not changed since (its own inode, mtime
and ctime: any file added, removed or renamed in or out changes them), is not
listed again until its first file is due, ten minutes at most: an idle tree of
100,000 files costs a stat a directory, and a listing every ten minutes (README,
Performance).
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from ..model import Identity
from .filters import Excludes


class NodeKind(enum.Enum):
    ENTRY = "entry"  # anything but a directory, with its lstat
    EXCLUDED = "excluded"  # matched an exclude pattern (a directory is not entered)
    UNREADABLE = "unreadable"  # a directory that can't be listed, an entry that can't be stat'ed
    DEFERRED = "deferred"  # files of one directory passed over unstat'ed (`Deferred`)
    QUIET_EXCLUDED = "quiet-excluded"  # a quiet directory's entries excluded by one pattern


class Node(NamedTuple):
    kind: NodeKind
    path: Path
    key: str  # below the top-level directory, with '/' (a directory's ends with '/')
    info: os.stat_result | None = None
    detail: str = ""  # the exclude pattern or the error
    files: int = 1  # how many files a DEFERRED node stands for, or entries a QUIET_EXCLUDED


NEVER = 2**63  # a time after every file's
QUIET_MAX_NS = 600 * 10**9  # a note's longest life: a change its times missed (a directory
# stamped by a server's clock behind ours) is found within this, not never
RACY_NS = 2 * 10**9  # a directory changed this recently may change again within its
# times' granularity (a clock tick; 2 s on FAT) and keep the same times: not noted


class Quiet(NamedTuple):
    """A directory listed when every entry in it but its directories was deferred or
    excluded: what it held then. Exclusion goes by name, so it holds while the directory
    is unchanged."""

    identity: Identity  # the directory's, taken before it was listed
    until: int  # when it must be listed again: its first file due, or its life is up (ns)
    held: dict[str, int]  # its files' keys and their times: held again when it is listed
    subdirs: tuple[str, ...]  # the names of its directories, still to be walked
    excluded: tuple[tuple[str, int], ...] = ()  # its entries excluded, by pattern: how many


@dataclass
class Deferred:
    """Files that need no stat before a time (nanoseconds since the epoch), by top-level
    directory and key: the scan notes a file that can't be ready before then whatever
    happens to it (any write or replacement only moves that time later), and the walk
    passes it over until then; and the directories that held only such files or entries
    excluded by name (`Quiet`), by path, which the walk need not list while unchanged, none
    of them is due and their note is under ten minutes old. Only what a pass met again is
    kept for the next one. Times are the wall clock's: when it steps back, every deferral
    is dropped (`start_pass`)."""

    until: dict[str, dict[str, int]] = field(default_factory=dict)
    quiet: dict[str, Quiet] = field(default_factory=dict)
    _next: dict[str, dict[str, int]] = field(default_factory=dict)
    _next_quiet: dict[str, Quiet] = field(default_factory=dict)
    _last_ns: int = 0  # the latest pass's time

    def start_pass(self, now_ns: int) -> None:
        """Before a pass at `now_ns`: a clock that went back since the last pass makes
        every time noted unreliable, so all are dropped (each file is stat'ed again)."""
        if now_ns < self._last_ns:
            self.until, self.quiet = {}, {}
        self._last_ns = now_ns

    def defer(self, top: Path, key: str, until_ns: int) -> None:
        self._next.setdefault(os.fspath(top), {})[key] = until_ns

    def note(self, directory: str, quiet: Quiet) -> None:
        """A directory all of whose entries but its directories are deferred or excluded,
        for the next pass (kept by it)."""
        self._next_quiet[directory] = quiet

    def finish_pass(self) -> None:
        """After a full pass: what it met and deferred is what the next pass passes over."""
        self.until, self._next = self._next, {}
        self.quiet, self._next_quiet = self._next_quiet, {}


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
    if deferred is not None:
        held = deferred.until.get(os.fspath(top), {})
        kept = deferred._next.setdefault(os.fspath(top), {})
    walk = _Walk(top.name, excludes, held, kept, now_ns, deferred)
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
    deferred: Deferred | None = None  # its quiet directories, when the caller defers

    def directory(
        self, directory: Path, prefix: str, stack: list[tuple[Path, str]]
    ) -> Iterator[Node]:
        """The entries of one directory (its directories go on `stack`), or, for a quiet
        directory unchanged since it was noted and with no file due, its note."""
        name = os.fspath(directory)
        deferred = self.deferred
        # a directory can be quiet only when files are held, excludes are set, or was noted
        wanted = deferred is not None and bool(self.held or deferred.quiet or self.excludes)
        identity = self._identity(directory) if wanted else None
        note = self._still_quiet(name, identity)
        if note is not None:
            stack.extend((directory / sub, f"{prefix}{sub}/") for sub in note.subdirs)
            if note.held:
                yield Node(NodeKind.DEFERRED, directory, prefix, None, "", len(note.held))
            for pattern, count in note.excluded:
                yield Node(NodeKind.QUIET_EXCLUDED, directory, prefix, None, pattern, count)
            return
        try:
            with os.scandir(directory) as listing:
                entries = list(listing)
        except FileNotFoundError:
            return  # vanished mid-walk: nothing left there
        except OSError as exc:
            detail = f"cannot read directory: {exc.strerror}"
            yield Node(NodeKind.UNREADABLE, directory, prefix, None, detail)
            return
        yield from self._listed(entries, directory, prefix, stack, identity)

    def _listed(
        self,
        entries: list[os.DirEntry[str]],
        directory: Path,
        prefix: str,
        stack: list[tuple[Path, str]],
        identity: Identity | None,
    ) -> Iterator[Node]:
        """The entries of a listed directory, and its note when all its entries but its
        directories were deferred or excluded."""
        first, quiet = NEVER, True
        subdirs: list[str] = []
        mine: dict[str, int] = {}  # this directory's files held
        excluded: dict[str, int] = {}  # its entries excluded, by pattern
        held, kept, now_ns = self.held, self.kept, self.now_ns  # locals: the hot loop
        for entry in entries:
            try:
                is_dir = entry.is_dir(follow_symlinks=False)  # the entry's type: no stat
            except OSError:
                is_dir = False
            key = prefix + entry.name
            until = held.get(key, 0) if held and not is_dir else 0
            if until > now_ns:
                kept[key] = mine[key] = until
                first = min(first, until)
                continue
            node = self._entry(entry, directory, key, is_dir, stack)
            if node is None:
                if is_dir:
                    subdirs.append(entry.name)
                continue
            if node.kind is NodeKind.EXCLUDED:
                excluded[node.detail] = excluded.get(node.detail, 0) + 1
            else:
                quiet = False
            yield node
        if mine:
            yield Node(NodeKind.DEFERRED, directory, prefix, None, "", len(mine))
        if (mine or excluded) and quiet and identity is not None:
            due = min(first, now_ns + QUIET_MAX_NS)
            note = Quiet(identity, due, mine, tuple(subdirs), tuple(excluded.items()))
            self._note_quiet(os.fspath(directory), note)

    def _still_quiet(self, name: str, identity: Identity | None) -> Quiet | None:
        """The note of a quiet directory that has not changed since and has no file due
        (kept for the next pass), else None: the directory must be listed."""
        deferred = self.deferred
        note = deferred.quiet.get(name) if deferred is not None else None
        if deferred is None or note is None:
            return None
        if note.identity != identity or note.until <= self.now_ns:
            self.held.update(note.held)  # listed again: its files' times still hold
            return None
        deferred.note(name, note)
        return note

    def _note_quiet(self, name: str, note: Quiet) -> None:
        """Note a directory all of whose entries but its directories were deferred or
        excluded, unless it changed too recently for its times to show the next change."""
        changed = max(note.identity.mtime_ns, note.identity.ctime_ns)
        if self.deferred is not None and changed < self.now_ns - RACY_NS:
            self.deferred.note(name, note)

    @staticmethod
    def _identity(directory: Path) -> Identity | None:
        """The directory's identity (device, inode, size, mtime, ctime), taken before it is
        listed: an entry added, removed or renamed after this changes it."""
        try:
            return Identity.of(os.lstat(directory))
        except OSError:
            return None

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
