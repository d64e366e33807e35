"""The settle phase: delete a file whose content S3 provably holds, or keep it.

The delete happens only when the file is still the very file that was hashed
(same device, inode, size, mtime and ctime).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..local.lease import Guard, broken, read_lease
from ..local.state import Trash, aside, put_back, rename_noreplace
from ..model import Identity, Kind, Outcome, Proven, of_file
from ..names import display

WRITER = "a process has it open for writing; kept until it is closed"


def settle(proven: Proven, *, dry_run: bool, trash: Trash) -> Outcome:
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


def delete_if_unchanged(path: Path, identity: Identity, trash: Trash) -> str | None:
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
            return _remove(path, identity, trash, fd if guard is Guard.HELD else None)
    except FileNotFoundError:
        return "it vanished"
    except OSError as exc:
        return exc.strerror or str(exc)


def _remove(path: Path, identity: Identity, trash: Trash, leased: int | None) -> str | None:
    """Rename the file out of the way, never replacing anything (into the trash, else
    beside itself once that is noted), check the renamed inode, then unlink it. Never
    unlinks by name."""
    moved, note = trash.place(path), None
    try:
        moved.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        rename_noreplace(path, moved)
    except FileNotFoundError:
        return "it vanished"
    except FileExistsError:
        return f"an earlier file waits in the trash at {display(moved)}; kept"
    except OSError:  # another filesystem (a bucket directory of its own), no room
        # noted first, so that a killed run's is put back; on a disk too full even for the
        # note (a rename within a directory needs no inode) it goes ahead unnoted: a kill in
        # that instant leaves the file under its aside name, uploaded then like any file
        moved, note = aside(path), trash.note_aside(path, identity.dev, identity.ino)
        try:
            rename_noreplace(path, moved)  # the same directory: the same filesystem
        except OSError as aside_exc:
            if note is not None:
                os.unlink(note)
            if isinstance(aside_exc, FileNotFoundError):
                return "it vanished"
            return f"cannot set it aside for the delete ({aside_exc.strerror or aside_exc}); kept"
    try:
        return _unlink_checked(path, moved, identity, leased)
    finally:
        if note is not None and not os.path.lexists(moved):  # else the next start puts it back
            os.unlink(note)


def _unlink_checked(path: Path, moved: Path, identity: Identity, leased: int | None) -> str | None:
    info = os.lstat(moved)
    if (info.st_dev, info.st_ino) != (identity.dev, identity.ino):
        kept = put_back(moved, path)
        return f"it was replaced just before the delete; kept as {display(kept)}"
    if leased is not None and broken(leased):
        # a writer opened it by its name just before the rename: it waits on the lease
        # with the inode in hand, and must find it where it was
        put_back(moved, path)
        return WRITER
    os.unlink(moved)
    return None
