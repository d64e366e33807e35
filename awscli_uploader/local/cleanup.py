"""`--delete-empty-dirs`: remove the directories a scan's deletions emptied.

Only directories below a bucket directory are candidates, never a bucket
directory, the root or the state directory. `os.rmdir` refuses a directory
that is not empty, so one that gained a file (or a subdirectory) meanwhile
stays; the check and the removal are one atomic step.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


def removal_chain(root: Path, directory: Path) -> list[Path]:
    """`directory` and its parents, deepest first, down to but not including the bucket
    directory; empty when `directory` is not below a bucket directory under `root`."""
    try:
        parts = directory.relative_to(root).parts
    except ValueError:
        return []
    if ".." in parts:
        return []
    return [root.joinpath(*parts[:depth]) for depth in range(len(parts), 1, -1)]


def remove_emptied_dirs(root: Path, directories: Iterable[Path]) -> list[Path]:
    """Remove each directory and then its parents while they are empty; what was removed."""
    removed: list[Path] = []
    for directory in sorted(set(directories), key=lambda p: len(p.parts), reverse=True):
        for candidate in removal_chain(root, directory):
            try:
                os.rmdir(candidate)
            except FileNotFoundError:
                continue  # gone already: its parent may still be empty
            except OSError:
                break  # not empty, replaced by a symlink or file, or not ours to remove
            removed.append(candidate)
    return removed
