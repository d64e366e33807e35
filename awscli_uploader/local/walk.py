"""The one read-only walk of the tree, shared by the scan and the backlog.

It streams with `os.scandir`, never follows a symlink, leaves reserved names
under the root alone, and does not enter an excluded directory.
"""

from __future__ import annotations

import enum
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from .filters import Excludes


class NodeKind(enum.Enum):
    ENTRY = "entry"  # anything but a directory, with its lstat
    EXCLUDED = "excluded"  # matched an exclude pattern (a directory is not entered)
    UNREADABLE = "unreadable"  # a directory that can't be listed, an entry that can't be stat'ed


class Node(NamedTuple):
    kind: NodeKind
    path: Path
    key: str  # below the top-level directory, with '/'
    info: os.stat_result | None = None
    detail: str = ""  # the exclude pattern or the error


def top_level(root: Path, reserved: frozenset[str]) -> list[os.DirEntry[str]]:
    """The entries directly under the root, by name, reserved names left out.

    Raises OSError when the root can't be read.
    """
    return sorted(
        (entry for entry in os.scandir(root) if entry.name not in reserved),
        key=lambda e: e.name,
    )


def walk_below(top: Path, excludes: Excludes | None = None) -> Iterator[Node]:
    """Every entry below the top-level directory `top`, depth first (no order promised)."""
    stack: list[tuple[Path, str]] = [(top, "")]
    while stack:
        directory, prefix = stack.pop()
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name, reverse=True)
        except FileNotFoundError:
            continue  # vanished mid-walk: nothing left there
        except OSError as exc:
            yield Node(
                NodeKind.UNREADABLE,
                directory,
                prefix,
                None,
                f"cannot read directory: {exc.strerror}",
            )
            continue
        for entry in entries:
            path = directory / entry.name  # parses the name only, not the whole path
            key = prefix + entry.name
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            except OSError as exc:
                yield Node(NodeKind.UNREADABLE, path, key, None, f"cannot stat: {exc.strerror}")
                continue
            is_dir = stat.S_ISDIR(info.st_mode)
            pattern = excludes.match(f"{top.name}/{key}", is_dir=is_dir) if excludes else None
            if pattern is not None:
                yield Node(NodeKind.EXCLUDED, path, key, info, pattern)
            elif is_dir:
                stack.append((path, key + "/"))
            else:
                yield Node(NodeKind.ENTRY, path, key, info)
