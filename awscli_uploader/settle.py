"""The settle phase: delete a file whose content S3 provably holds, or keep it.

The delete happens only when the file is still the very file that was hashed
(same device, inode, size, mtime and ctime).
"""

from __future__ import annotations

import enum
import os
from pathlib import Path
from typing import NamedTuple

from .outcome import Kind, Outcome, of_file
from .proof import Identity, Verdict
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


def settle(proven: Proven, *, dry_run: bool) -> Outcome:
    """Delete the proven file if it is unchanged; the outcome says what happened."""
    item, identity, uploaded = proven
    if dry_run:
        return of_file(Kind.WOULD_DELETE, item)
    problem = delete_if_unchanged(item.path, identity)
    if problem is not None:
        why = "uploaded" if uploaded else "already in S3"
        return of_file(Kind.NOT_DELETED, item, f"{why}, but not deleted: {problem}")
    if uploaded:
        return of_file(Kind.UPLOADED, item, size=identity.size)
    return of_file(Kind.PRESENT, item)


def delete_if_unchanged(path: Path, identity: Identity) -> str | None:
    """Delete `path` if it is still the file that was verified; else say why not."""
    try:
        current = Identity.of(os.lstat(path))
    except FileNotFoundError:
        return "it vanished"
    except OSError as exc:
        return exc.strerror or str(exc)
    if current != identity:
        return "it changed after it was verified; kept for the next scan"
    try:
        os.unlink(path)
    except OSError as exc:
        return exc.strerror or str(exc)
    return None
