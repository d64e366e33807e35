"""What is still on the root's volume: whether it may be deleted with its instance.

Not the backlog (ops/backlog.py), which counts what a scan would upload: this walk has
no excludes and no bucket rules, so it sees what a deleted volume would lose that no
scan uploads: excluded files, files directly under the root, and what the state
directory keeps on purpose (the trash and the files set aside that could not be put
back). It asks the state directory which of its parts may go.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..names import display
from .state import StateDir


def left_on_volume(state: StateDir) -> str | None:
    """Why the data volume mounted at the root is not proven empty, or None. A root that is
    not a mount point is a directory on some other disk (the volume failed to mount, or was
    unmounted): what the volume holds can't be seen, so it is not proven empty."""
    root = state.root
    if not os.path.ismount(root):
        return f"the root {display(root)} is not a mount point: the volume's files can't be seen"
    return on_volume(state)


def on_volume(state: StateDir) -> str | None:
    """Why the root's filesystem is not proven empty (the first file found on it, or what
    could not be read), or None when it holds only directories and the state directory's
    disposable parts. No symlink is followed (a symlink is itself a file on the volume),
    and a directory on another filesystem (a mount below the root) is not entered: its
    files are not on this volume."""
    root = state.root
    try:
        device = os.lstat(root).st_dev
    except OSError as exc:
        return f"the root {display(root)} can't be read ({exc.strerror})"
    stack = [root]
    while stack:
        directory = stack.pop()
        try:
            found = _first_kept(state, directory, device, stack)
        except OSError as exc:
            return f"{display(exc.filename or directory)} can't be read ({exc.strerror})"
        if found is not None:
            return f"{display(found)} is on it"
    return None


def _first_kept(state: StateDir, directory: Path, device: int, stack: list[Path]) -> Path | None:
    """The first entry of `directory` that only the volume holds, or None; its directories
    on the volume go on `stack`. OSError when it, or an entry, can't be read."""
    try:
        with os.scandir(directory) as listing:
            entries = list(listing)
    except FileNotFoundError:
        return None  # vanished mid-walk: nothing left there
    for entry in entries:
        path = Path(entry.path)
        try:
            info = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        if state.disposable(path):
            continue
        if not stat.S_ISDIR(info.st_mode):
            return path
        if info.st_dev == device:
            stack.append(path)
    return None
