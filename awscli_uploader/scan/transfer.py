"""The transfer phase: pin the files (hard links in a staging directory), then upload.

A bucket's linkable files go in one `aws s3 cp --recursive`; the rest (another
filesystem, protected hard links, buckets whose ETags prove nothing) one by
one, with their SHA-256 stored in the object's metadata.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from ..errors import AwsCliError
from ..local.digest import ReadFailed
from ..model import Candidate, Identity, Kind, Outcome, RemoteObject, of_batch, of_file
from ..s3.layer import concurrency_for
from ..s3.settings import MultipartSettings
from . import proof
from .check import cli_reason
from .proof import Fingerprint
from .target import Target

_UNLINKABLE = (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EACCES)
NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EMFILE, errno.ENFILE})


COPY_MAX_BYTES = 1024 * 1024  # a file that can't be linked is copied into staging up to this
COPY_BUDGET = 256 * 1024 * 1024  # bytes a batch copies into staging at most


@dataclass
class Staged:
    staged: list[tuple[Candidate, Path]] = field(default_factory=list)
    direct: list[Candidate] = field(default_factory=list)  # to upload from where they are
    problem: str | None = None  # why staging stopped (a full disk): the rest are direct
    failed: list[tuple[Candidate, str]] = field(default_factory=list)  # an errno of its own
    copied: dict[Path, Identity] = field(default_factory=dict)  # copies: the original's
    # identity while copied, which the delete checks (the copy's own is not the file's)


def copy_pinned(source: Path, target: Path) -> Identity | None:
    """Copy a file that can't be linked to `target`; the file's identity, unchanged while it
    was copied, or None when it changed or is not a regular file (it waits for a later scan).
    OSError when it can't be read or the copy can't be written."""
    fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb", buffering=0) as handle:
        before = Identity.of(os.fstat(fd))
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        try:
            with open(target, "xb") as out:
                shutil.copyfileobj(handle, out, 1024 * 1024)
            after = Identity.of(os.fstat(fd))
        except BaseException:
            target.unlink(missing_ok=True)
            raise
    if after != before:
        target.unlink()
        return None
    return after


def stage(files: Sequence[Candidate], staging: Path) -> Staged:
    """Hard-link each file into `staging` at its key, pinning the inode that gets uploaded.

    A small file that can't be linked (another filesystem, protected hard links) is
    copied instead, its identity checked while copied; a bigger one is returned
    separately, to upload from where it is; so is the rest of the batch when the disk
    has no room (the proof after the upload still decides).
    """
    result = Staged()
    try:
        staging.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:  # no room, or a filesystem that can't (EIO, EOPNOTSUPP)
        return Staged(direct=list(files), problem=f"cannot stage ({exc.strerror or exc})")
    budget = COPY_BUDGET
    for n, item in enumerate(files):
        target = staging / item.key
        try:
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            _pin(item, target, budget, result)
        except FileNotFoundError:
            continue
        except OSError as exc:
            if exc.errno in NO_ROOM:
                result.direct += files[n:]
                result.problem = exc.strerror
                return result
            result.failed.append((item, f"cannot stage: {exc.strerror or exc}"))
            continue
        if target in result.copied:
            budget -= item.size
    return result


def _pin(item: Candidate, target: Path, budget: int, result: Staged) -> None:
    """Link the file to `target` (or copy it, small and unlinkable), adding it to `result`."""
    try:
        os.link(item.path, target, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in _UNLINKABLE:
            raise
        if item.size > min(COPY_MAX_BYTES, budget):
            result.direct.append(item)
            return
        try:
            identity = copy_pinned(item.path, target)
        except OSError as copy_exc:
            if copy_exc.errno in NO_ROOM or isinstance(copy_exc, FileNotFoundError):
                raise
            result.direct.append(item)  # unreadable: its upload says why
            return
        if identity is not None:
            result.copied[target] = identity
            result.staged.append((item, target))
        return
    if not stat.S_ISREG(os.lstat(target).st_mode):
        target.unlink()
        return
    result.staged.append((item, target))


def fingerprints(
    paths: Sequence[Path],
    settings: MultipartSettings = proof.DEFAULTS,
    stop: threading.Event | None = None,
) -> dict[Path, Fingerprint]:
    """Fingerprints of the staged files; one that changes while read has none, and after
    a stop no more are taken (a chunk may be 10 GiB to read)."""
    found: dict[Path, Fingerprint] = {}
    for path in paths:
        if stop is not None and stop.is_set():
            break
        try:
            found[path] = proof.fingerprint(path, settings)
        except ReadFailed:  # verification says why
            continue
    return found


def as_originals(
    prints: dict[Path, Fingerprint], copied: dict[Path, Identity]
) -> dict[Path, Fingerprint]:
    """The fingerprints with each staged copy's bytes and its original's identity (the
    identity the delete checks)."""
    return {p: f._replace(identity=copied[p]) if p in copied else f for p, f in prints.items()}


MAX_FILTER_CHARS = 64 * 1024  # of --include patterns a call, well below ARG_MAX


def bucket_dir(item: Candidate) -> Path:
    """The top-level directory a candidate lies in (its name need not be the bucket's)."""
    return item.path.parents[item.key.count("/")]


def filter_groups(keys: Sequence[str], *, root_chars: int = 0) -> list[list[str]]:
    """The keys in groups whose include patterns (each the whole path, its root
    `root_chars` long) fit one command line."""
    groups: list[list[str]] = [[]]
    size = 0
    for key in keys:
        if groups[-1] and size + root_chars + len(key) > MAX_FILTER_CHARS:
            groups.append([])
            size = 0
        groups[-1].append(key)
        size += root_chars + len(key) + 12
    return groups


def upload_batch(
    target: Target,
    source: Path,
    files: Sequence[tuple[Candidate, Path]],
    bucket_dir: Path,
    *,
    pinned: bool = True,
) -> tuple[bool, list[Outcome]]:
    """`cp --recursive` of the staging directory, or (`pinned=False`) of the bucket directory
    itself with include lists of the batch's keys, for files that can't be linked: whether
    it ran, and what it said (errors name the bucket directory, not the staging directory)."""
    total = sum(item.size for item, _ in files)
    keys = [item.key for item, _ in files]
    small = sum(1 for item, _ in files if item.size < target.multipart.threshold)
    concurrency = concurrency_for(small, target.max_concurrency)
    groups = [None] if pinned else filter_groups(keys, root_chars=len(os.path.abspath(source)))
    lines: list[str] = []
    try:
        for only in groups:
            result = target.cli.upload_tree(
                source, target.bucket, total_bytes=total, only=only, concurrency=concurrency
            )
            lines += [line for line in result.stderr.splitlines() if line.strip()]
    except AwsCliError as exc:
        if exc.cancelled:  # a stop: the files stay, nothing failed
            return False, [of_batch(Kind.STOPPED, target.bucket, len(files))]
        return False, [of_batch(Kind.BATCH_FAILED, target.bucket, len(files), cli_reason(exc))]
    return True, [
        Outcome(Kind.CLI_ERROR, reason=line.replace(str(source), str(bucket_dir))) for line in lines
    ]


class Sent(NamedTuple):
    """What one upload with a SHA-256 left: the object to prove the file against and the
    file's identity when it was hashed, or the outcome that ends the file's scan."""

    head: RemoteObject | None  # head-object's, or the put-object's answer when `md5` is set
    ended: Outcome | None
    hashed: Identity | None = None
    taken: bool = False  # the key was created by another writer meanwhile: nothing uploaded
    md5: str | None = None  # the file's MD5 as hashed, to prove it by the put-object's ETag


def upload_single(target: Target, item: Candidate, path: Path) -> Sent:
    """One upload that stores the file's SHA-256 with the object: a `cp`, then head-object;
    or under --if-exists keep a put-object only if the key is still free (`put_new`), whose
    own answer proves it where its ETag is S3's MD5 of what it stored, else head-object."""
    cli, bucket = target.cli, target.bucket
    md5: str | None = None  # only a put-object sends it
    try:
        if target.put_new(item.size):
            md5, sha256, hashed = proof.local_digests(path)
        else:
            sha256, hashed = proof.local_sha256(path)
    except ReadFailed as exc:
        return Sent(None, of_file(exc.kind, item, str(exc)))
    try:
        if md5 is None:
            cli.upload_file(path, bucket, item.key, size=item.size, sha256=sha256)
        else:
            stored = cli.put_new(path, bucket, item.key, size=hashed.size, md5=md5, sha256=sha256)
            if stored is None:
                return Sent(None, None, hashed, taken=True)
            if proof.etag_is_md5(stored):
                return Sent(stored, None, hashed, md5=md5)
        head = cli.head_object(bucket, item.key)
    except AwsCliError as exc:
        if exc.cancelled:
            return Sent(None, of_batch(Kind.STOPPED, target.bucket, 1))
        return Sent(None, of_file(Kind.UPLOAD_FAILED, item, exc.summary()))
    if head is None:
        return Sent(None, of_file(Kind.MISSING, item))
    return Sent(head, None, hashed)
