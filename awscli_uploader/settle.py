"""The settle phase: delete a file whose content S3 provably holds, or keep it.

The delete happens only when the file is still the very file that was hashed
(same device, inode, size, mtime and ctime).
"""

from __future__ import annotations

import contextlib
import enum
import os
from pathlib import Path
from typing import NamedTuple

from .digest import Identity
from .lease import Guard, broken, read_lease
from .names import display
from .outcome import Kind, Outcome, of_file
from .proof import Verdict
from .scanner import Candidate


class Action(enum.Enum):
    UPLOAD = "upload"
    DELETE = "delete"
    KEEP = "keep"


def decide(verdict: Verdict | None, *, uploaded: bool) -> Action:
    """What to do with a file given S3's verdict (None: no object under its key).

    Before an upload anything short of a proven match is uploaded (again);
    after it, anything short of a proven match is kept for the next scan.
    """
    if verdict is Verdict.SAME:
        return Action.DELETE
    return Action.KEEP if uploaded else Action.UPLOAD


class Proven(NamedTuple):
    """A file whose bytes S3 holds, as it was when hashed."""

    item: Candidate
    identity: Identity
    uploaded: bool  # by this scan; else it was already in S3


class Trash(NamedTuple):
    """Where a verified file is renamed before its unlink: `dir/<path below root>`."""

    root: Path
    dir: Path

    def place(self, path: Path) -> Path:
        return self.dir / path.relative_to(self.root)


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


WRITER = "a process has it open for writing; kept until it is closed"


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


def put_back(moved: Path, path: Path) -> Path:
    """Link `moved` back at `path`, or beside it when something took that name meanwhile
    (never clobbering it); then drop `moved`. Returns where it is now."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for n in range(1000):
        target = path if n == 0 else path.with_name(f"{path.name}.awscli-uploader-kept-{n}")
        try:
            os.link(moved, target, follow_symlinks=False)
        except FileExistsError:
            continue
        os.unlink(moved)
        return target
    return moved


def restore_trash(trash: Trash) -> list[Path]:
    """Put back what a killed run left in the trash (a rename, then no unlink)."""
    restored: list[Path] = []
    for directory, _, names in os.walk(trash.dir, topdown=False):
        for name in names:
            moved = Path(directory) / name
            restored.append(put_back(moved, trash.root / moved.relative_to(trash.dir)))
        if Path(directory) != trash.dir:
            with contextlib.suppress(OSError):
                os.rmdir(directory)
    return restored
