"""The settle phase: delete a file whose content S3 provably holds, or keep it.

The delete happens only when the file is still the very file that was hashed
(same device, inode, size, mtime and ctime).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..local.lease import Guard, broken, read_lease
from ..local.state import Trash, put_back
from ..model import Identity, Kind, Outcome, Proven, of_file
from ..names import display

WRITER = "a process has it open for writing; kept until it is closed"


def settle(proven: Proven, *, dry_run: bool, trash: Trash | None = None) -> Outcome:
    """Delete the proven file if it is unchanged and no process has it open for writing;
    the outcome says what happened."""
    item, identity, uploaded = proven
    if dry_run:
        return of_file(Kind.WOULD_DELETE, item)
    refusal = delete_if_unchanged(item.path, identity, trash)
    if refusal is WRITER:
        return of_file(Kind.OPEN, item, WRITER)
    if refusal is not None:
        why = "uploaded" if uploaded else "already in S3"
        return of_file(Kind.NOT_DELETED, item, f"{why}, but not deleted: {refusal}")
    if uploaded:
        return of_file(Kind.UPLOADED, item, size=identity.size)
    return of_file(Kind.PRESENT, item)


def delete_if_unchanged(path: Path, identity: Identity, trash: Trash | None = None) -> str | None:
    """Delete `path` if it is still the file that was verified; else say why not.

    Under a read lease (lease.py) no process has it open for writing, and none
    can open it until the lease is released. The file is renamed into the trash,
    and only the renamed inode, checked to be the verified one, is unlinked: a
    file renamed into place at the last moment is put back, never deleted.
    """
    try:
        with read_lease(path) as (guard, fd):
            if guard is Guard.WRITER:
                return WRITER
            if Identity.of(os.fstat(fd)) != identity:
                return "it changed after it was verified; kept for the next scan"
            if guard is Guard.HELD and broken(fd):
                return WRITER
            return _remove(path, identity, trash)
    except FileNotFoundError:
        return "it vanished"
    except OSError as exc:
        return exc.strerror or str(exc)


def _remove(path: Path, identity: Identity, trash: Trash | None) -> str | None:
    if trash is not None:
        moved = trash.place(path)
        try:
            moved.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.rename(path, moved)
        except FileNotFoundError:
            return "it vanished"
        except OSError:
            pass  # another filesystem, or no room for the trash: unlink in place
        else:
            info = os.lstat(moved)
            if (info.st_dev, info.st_ino) != (identity.dev, identity.ino):
                kept = put_back(moved, path)
                return f"it was replaced just before the delete; kept as {display(kept)}"
            os.unlink(moved)
            return None
    info = os.lstat(path)
    if (info.st_dev, info.st_ino) != (identity.dev, identity.ino):
        return "it was replaced just before the delete; kept"
    os.unlink(path)
    return None
