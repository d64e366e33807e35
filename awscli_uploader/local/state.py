"""The state directory `ROOT/.awscli-uploader`: its one owner, and the one place that knows
its layout. Everyone else asks it for a path; nobody spells one.

    lock                      the holder's PID (the lock itself is on the root directory)
    last-scan.json            the last scan's record, for `status`
    opaque-buckets            buckets whose ETags prove nothing (SSE-KMS, SSE-C), one a line
    staging/<bucket>-<pid>/   hard links (or copies) pinning a batch while it uploads
    trash/<dir>/<key...>      a verified file between its rename and its unlink
                              (on another filesystem: beside itself, as NAME + ASIDE)
    uploads/<pid>-<n>.json    an upload call under way that may leave multipart uploads:
                              its bucket, its keys of multipart size, when it started

It lives on the root's filesystem, so that staging links and the trash rename never
cross a device.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
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


class Journal(NamedTuple):
    """An upload call that was under way: what a killed run may have left in S3."""

    path: Path
    bucket: str
    keys: list[str]
    started: float  # Unix time


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
    def trash(self) -> Trash:
        return Trash(self.root, self.path / TRASH)

    def staging(self, bucket: str) -> Path:
        """This process's staging directory for a bucket."""
        return self.path / STAGING / f"{bucket}-{os.getpid()}"

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

    def end_upload(self, entry: Journal | None) -> None:
        if entry is not None:
            with contextlib.suppress(OSError):
                os.unlink(entry.path)

    def left_uploads(self) -> list[Journal]:
        """The upload calls a killed run left noted (an unreadable note is dropped)."""
        found: list[Journal] = []
        with contextlib.suppress(OSError):
            for entry in sorted((self.path / UPLOADS).iterdir()):
                try:
                    data = json.loads(entry.read_text(encoding="utf-8"))
                    found.append(
                        Journal(entry, str(data["bucket"]), list(data["keys"]), data["started"])
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
    """Where a verified file is renamed before its unlink: `dir/<path below root>`."""

    root: Path
    dir: Path

    def place(self, path: Path) -> Path:
        return self.dir / path.relative_to(self.root)

    def origin(self, moved: Path) -> Path:
        return self.root / moved.relative_to(self.dir)

    def restore(self) -> tuple[list[Path], list[str]]:
        """Put back what a killed run left in the trash (a rename, then no unlink): where
        each file is now, and why each that could not be put back stays in the trash (a
        file where its directory was, a refused link); the next start tries again."""
        restored: list[Path] = []
        problems: list[str] = []
        for directory, _, names in os.walk(self.dir, topdown=False):
            for name in names:
                moved = Path(directory) / name
                try:
                    restored.append(put_back(moved, self.origin(moved)))
                except OSError as exc:
                    problems.append(
                        f"{moved}: cannot put it back at {self.origin(moved)} "
                        f"({exc.strerror or exc}); it stays in the trash: move it back by hand"
                    )
            if Path(directory) != self.dir:
                with contextlib.suppress(OSError):
                    os.rmdir(directory)
        return restored, problems


ASIDE = ".awscli-uploader-deleting"  # a file set aside beside itself for its delete


def aside(path: Path) -> Path:
    """Where a file is renamed for its delete when the trash is on another filesystem: the
    walk never uploads such a name, and the scan puts one a killed run left back."""
    return path.with_name(path.name + ASIDE)


def set_aside(path: Path) -> Path | None:
    """The file that `path`, set aside, stands for; None for any other name."""
    return path.with_name(path.name[: -len(ASIDE)]) if path.name.endswith(ASIDE) else None


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
