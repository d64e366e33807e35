"""The state directory `ROOT/.awscli-uploader`: its one owner, and the one place that knows
its layout. Everyone else asks it for a path; nobody spells one.

    lock                      the holder's PID (the lock itself is on the root directory)
    last-scan.json            the last scan's record, for `status`
    opaque-buckets            buckets whose ETags prove nothing (SSE-KMS, SSE-C), one a line
    staging/<bucket>-<pid>/   hard links (or copies) pinning a batch while it uploads
    staging/<bucket>-<pid>.read   an object read back to compare it (--if-exists keep)
    trash/<dir>/<key...>      a verified file between its rename and its unlink
                              (on another filesystem: beside itself, as NAME + ASIDE,
    aside/<pid>-<n>.json       noted here first: only a noted one is put back)
    uploads/<pid>-<n>.json    an upload call under way that may leave multipart uploads:
                              its bucket, its keys of multipart size, when it started
    aws/                      no longer written (the AWS CLI's transfer layer, a copy of
                              credentials, lives in a private runtime directory off the
                              root: s3/layer_dir.py); what an older version left is
                              removed at start
    terminating               this instance is going (a spot notice, or its Auto Scaling
                              group terminates it): why and when; a signal to the writers
                              (infra/ stops the coordinator on it), removed at start

It lives on the root's filesystem, so that staging links and the trash rename never
cross a device. What may go with that volume (`StateDir.disposable`): everything above
but the trash and the notes of files set aside (what they hold may be a file's only
copy, kept to be put back), and any name this layout does not spell.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import itertools
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from .atomicfile import write_atomic

_CALLS = itertools.count()

NAME = ".awscli-uploader"
LOCK = "lock"
LAST_SCAN = "last-scan.json"
OPAQUE = "opaque-buckets"
STAGING = "staging"
TRASH = "trash"
UPLOADS = "uploads"
ASIDE_NOTES = "aside"
OLD_LAYERS = "aws"
TERMINATING = "terminating"
# records, caches, journals, links or copies of files still in place, transfer layers
DISPOSABLE = frozenset({LOCK, LAST_SCAN, OPAQUE, STAGING, UPLOADS, OLD_LAYERS, TERMINATING})


class Journal(NamedTuple):
    """An upload call whose multipart uploads may be left in S3: under way when a run was
    killed, or ended without its cleanup (then `ended` bounds when they were made)."""

    path: Path
    bucket: str
    keys: list[str]
    started: float  # Unix time
    ended: float | None = None


@dataclass(frozen=True)
class StateDir:
    root: Path

    @property
    def path(self) -> Path:
        return self.root / NAME

    @property
    def lock_file(self) -> Path:
        return self.path / LOCK

    @property
    def last_scan(self) -> Path:
        return self.path / LAST_SCAN

    @property
    def terminating(self) -> Path:
        return self.path / TERMINATING

    def disposable(self, path: Path) -> bool:
        """Whether `path` may be lost with the volume: it is in the state directory, in a
        part that holds nothing found only there (DISPOSABLE, or a half-written temporary
        of one). False for anything else: the trash, the notes of files set aside, a name
        this layout does not spell, and everything outside the state directory."""
        try:
            name = path.relative_to(self.path).parts[0]
        except (ValueError, IndexError):
            return False
        if name in DISPOSABLE:
            return True
        # write_atomic's temporary: .<name>.<random>.tmp
        return name.endswith(".tmp") and any(name.startswith(f".{part}.") for part in DISPOSABLE)

    def note_terminating(self, reason: str) -> bool:
        """Say that the instance is going, for whoever writes the root; False when the note
        can't be written."""
        try:
            self.path.mkdir(mode=0o700, exist_ok=True)
            write_atomic(self.terminating, f"{reason}\n{time.time():.0f}\n")
        except OSError:
            return False
        return True

    def clear_terminating(self) -> None:
        """A new run on this root: an old note (a volume moved to a new instance) says
        nothing about this instance."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.terminating)

    @property
    def trash(self) -> Trash:
        return Trash(self.root, self.path / TRASH, self.path / ASIDE_NOTES)

    def clean_old_layers(self) -> None:
        """Remove the transfer layers an older version, killed, left on the root (they may
        hold a copy of credentials)."""
        shutil.rmtree(self.path / OLD_LAYERS, ignore_errors=True)

    def staging(self, bucket: str) -> Path:
        """This process's staging directory for a bucket."""
        return self.path / STAGING / f"{bucket}-{os.getpid()}"

    def read_back(self, bucket: str) -> Path:
        """Where this process reads an object of the bucket back (removed with staging)."""
        return self.path / STAGING / f"{bucket}-{os.getpid()}.read"

    def staged_keys(self) -> set[tuple[str, str]]:
        """The (bucket, key) of every link a killed run left in staging."""
        staging = self.path / STAGING
        left: set[tuple[str, str]] = set()
        for directory, _, names in os.walk(staging):
            parts = Path(directory).relative_to(staging).parts
            if parts:  # <bucket>-<pid>/<key>
                bucket, prefix = parts[0].rpartition("-")[0], "/".join(parts[1:])
                left.update((bucket, f"{prefix}/{n}" if prefix else n) for n in names)
        return left

    def clean_staging(self) -> set[tuple[str, str]]:
        """Remove what a killed run left in staging (the originals stay in place); the
        (bucket, key) of each link, which S3 may hold already."""
        left = self.staged_keys()
        shutil.rmtree(self.path / STAGING, ignore_errors=True)
        return left

    def begin_upload(self, bucket: str, keys: Sequence[str]) -> Journal | None:
        """Note an upload call before it starts (None when the note can't be written: a
        full disk only costs the cleanup after a kill)."""
        entry = self.path / UPLOADS / f"{os.getpid()}-{next(_CALLS)}.json"
        started = time.time()
        text = json.dumps({"bucket": bucket, "keys": list(keys), "started": started})
        try:
            entry.parent.mkdir(mode=0o700, exist_ok=True)
            write_atomic(entry, text, mode=0o600)
        except OSError:
            return None
        return Journal(entry, bucket, list(keys), started)

    def upload_ended(self, entry: Journal) -> Journal:
        """The call ended but its cleanup could not run: note when (best effort)."""
        ended = entry._replace(ended=time.time())
        data = {"bucket": ended.bucket, "keys": ended.keys, "started": ended.started}
        with contextlib.suppress(OSError):
            write_atomic(entry.path, json.dumps({**data, "ended": ended.ended}), mode=0o600)
        return ended

    def end_upload(self, entry: Journal | None) -> None:
        if entry is not None and entry.path.name:
            with contextlib.suppress(OSError):
                os.unlink(entry.path)

    def left_uploads(self) -> list[Journal]:
        """The upload calls a killed run left noted (an unreadable note is dropped)."""
        found: list[Journal] = []
        with contextlib.suppress(OSError):
            for entry in sorted((self.path / UPLOADS).iterdir()):
                try:
                    data = json.loads(entry.read_text(encoding="utf-8"))
                    bucket, keys = str(data["bucket"]), [str(k) for k in data["keys"]]
                    ended = data.get("ended")
                    found.append(
                        Journal(entry, bucket, keys, float(data["started"]), ended and float(ended))
                    )
                except (OSError, ValueError, KeyError, TypeError):
                    with contextlib.suppress(OSError):
                        os.unlink(entry)
        return found

    def opaque_buckets(self) -> set[str]:
        """Buckets found earlier to have ETags that prove nothing."""
        try:
            text = (self.path / OPAQUE).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return set()
        return {line.strip() for line in text.splitlines() if line.strip()}

    def remember_opaque(self, bucket: str) -> None:
        """Best effort (a full disk only costs the next start one more batch upload)."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
        with contextlib.suppress(OSError):
            fd = os.open(self.path / OPAQUE, flags, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as handle:
                handle.write(bucket + "\n")


@dataclass(frozen=True)
class Trash:
    """Where a verified file is renamed before its unlink: `dir/<path below root>`; or, when
    that is another filesystem, beside itself (NAME + ASIDE), noted first in `notes`."""

    root: Path
    dir: Path
    notes: Path

    def place(self, path: Path) -> Path:
        return self.dir / path.relative_to(self.root)

    def origin(self, moved: Path) -> Path:
        return self.root / moved.relative_to(self.dir)

    def note_aside(self, path: Path, dev: int, ino: int) -> Path | None:
        """Note, before it happens, that `path` (this inode) is set aside beside itself, so
        that a killed run's is put back; None when the note can't be written (then the
        file must not be set aside: nothing would know it)."""
        note = self.notes / f"{os.getpid()}-{next(_CALLS)}.json"
        text = json.dumps({"path": os.fspath(path), "dev": dev, "ino": ino})
        try:
            note.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
            write_atomic(note, text, mode=0o600)
        except OSError:
            return None
        return note

    def restore(self) -> tuple[list[Path], list[str]]:
        """Put back what a killed run left in the trash or set aside (a rename, then no
        unlink): where each file is now, and why each that could not be put back stays
        where it is (a file where its directory was); the next start tries again."""
        restored: list[Path] = []
        problems: list[str] = []

        def back(moved: Path, path: Path) -> bool:
            try:
                restored.append(put_back(moved, path))
            except OSError as exc:
                problems.append(
                    f"{moved}: cannot put it back at {path} ({exc.strerror or exc}); "
                    "it stays there: move it back by hand"
                )
                return False
            return True

        for directory, _, names in os.walk(self.dir, topdown=False):
            for name in names:
                back(Path(directory) / name, self.origin(Path(directory) / name))
            if Path(directory) != self.dir:
                with contextlib.suppress(OSError):
                    os.rmdir(directory)
        for note in sorted(self.notes.glob("*.json")) if self.notes.is_dir() else []:
            try:
                data = json.loads(note.read_text(encoding="utf-8"))
                path = Path(data["path"])
                info = os.lstat(aside(path))
            except (OSError, ValueError, KeyError, TypeError):
                info = None  # deleted, or put back, before the kill
            same = info is not None and (info.st_dev, info.st_ino) == (data["dev"], data["ino"])
            if same and not back(aside(path), path):
                continue  # the note stays: the next start tries again
            with contextlib.suppress(OSError):
                os.unlink(note)
        return restored, problems


ASIDE = ".awscli-uploader-deleting"  # a file set aside beside itself for its delete


def aside(path: Path) -> Path:
    """Where a file is renamed for its delete when the trash is on another filesystem (the
    same directory is the same filesystem). Only a noted one is ever put back."""
    return path.with_name(path.name + ASIDE)


_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
_AT_FDCWD = -100
_RENAME_NOREPLACE = 1


def rename_noreplace(source: Path, target: Path) -> None:
    """Rename, never replacing what is at `target` (FileExistsError then): renameat2 with
    RENAME_NOREPLACE, else a hard link and an unlink of `source`."""
    if _LIBC is not None and hasattr(_LIBC, "renameat2"):
        done = _LIBC.renameat2(
            _AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), _RENAME_NOREPLACE
        )
        if done == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.ENOSYS, errno.EINVAL):  # the filesystem or kernel can't
            raise OSError(code, os.strerror(code), os.fspath(source))
    os.link(source, target, follow_symlinks=False)
    os.unlink(source)


def put_back(moved: Path, path: Path) -> Path:
    """Rename `moved` back to `path`, or beside it when something took that name meanwhile
    (never replacing it). Returns where it is now. A file both names already point at (a
    kill between a link and an unlink) just loses the extra name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        if os.path.samestat(os.lstat(moved), os.lstat(path)):
            os.unlink(moved)
            return path
    for n in range(1000):
        target = path if n == 0 else path.with_name(f"{path.name}.awscli-uploader-kept-{n}")
        try:
            rename_noreplace(moved, target)
        except FileExistsError:
            continue
        return target
    return moved
