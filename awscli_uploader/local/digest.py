"""Reading a local file for a proof: its digests, and its identity while it was read.

No verdict may rest on torn bytes: a file that changes while it is read raises
FileChanged, one that can't be read at all FileUnreadable (with what to do).
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, TypeVar

from ..model import MIB, Identity, Kind


class ReadFailed(Exception):
    """A file could not be read into a proof; `kind` is the outcome that says how."""

    kind = Kind.CHANGED


class FileChanged(ReadFailed):
    """The file changed, vanished or stopped being a regular file while it was read."""

    kind = Kind.CHANGED


class FileUnreadable(ReadFailed):
    """The file can't be read at all (permission, too many open files, an I/O error)."""

    kind = Kind.UNREADABLE


def unreadable(exc: OSError) -> str:
    """Why a file can't be read, and what to do about it."""
    if exc.errno in (errno.EACCES, errno.EPERM):
        return (
            f"permission denied: the daemon's user (uid {os.geteuid()}) can't read it; "
            "let it read the files (the writer's umask or group, or a default ACL)"
        )
    return f"cannot read: {exc.strerror or exc}"


def multipart_etag(part_digests: list[bytes]) -> str:
    return (
        hashlib.md5(b"".join(part_digests), usedforsecurity=False).hexdigest()
        + f"-{len(part_digests)}"
    )


Digest = TypeVar("Digest")


def read_pinned(path: Path, digest: Callable[[BinaryIO, int], Digest]) -> tuple[Digest, Identity]:
    """Run `digest(handle, size)` over a regular file opened without following links.

    Raises FileChanged when the file changed while it was read, so no verdict
    rests on torn bytes; a FIFO or socket is never waited on.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError as exc:
        raise FileChanged("it vanished") from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # O_NOFOLLOW met a symlink where the file was
            raise FileChanged("no longer a regular file") from exc
        raise FileUnreadable(unreadable(exc)) from exc
    with os.fdopen(fd, "rb", buffering=0) as handle:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode):
            raise FileChanged("no longer a regular file")
        try:
            found = digest(handle, before.st_size)
        except OSError as exc:
            raise FileUnreadable(unreadable(exc)) from exc
        after = os.fstat(fd)
    identity = Identity.of(after)
    if Identity.of(before) != identity:
        raise FileChanged("changed while it was read")
    return found, identity


def whole(algorithm: str) -> Callable[[BinaryIO, int], set[str]]:
    def digest(handle: BinaryIO, size: int) -> set[str]:
        hasher = hashlib.new(algorithm, usedforsecurity=False)
        for block in iter(lambda: handle.read(MIB), b""):
            hasher.update(block)
        return {hasher.hexdigest()}

    return digest


def md5_and_sha256(handle: BinaryIO, size: int) -> tuple[str, str]:
    """The MD5 (a single PUT's ETag) and the SHA-256 of the handle's bytes, in one read."""
    md5, sha256 = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    for block in iter(lambda: handle.read(MIB), b""):
        md5.update(block)
        sha256.update(block)
    return md5.hexdigest(), sha256.hexdigest()


def multipart_etags(handle: BinaryIO, chunks: list[int]) -> set[str]:
    """The multipart ETag of the handle's bytes for each part size, in one read."""
    hashers = {chunk: hashlib.md5(usedforsecurity=False) for chunk in chunks}
    digests: dict[int, list[bytes]] = {chunk: [] for chunk in chunks}
    offset = 0
    for block in iter(lambda: handle.read(MIB), b""):
        pos = 0
        while pos < len(block):
            # cut the block at the next part boundary of any candidate
            take = len(block) - pos
            for chunk in chunks:
                room = chunk - (offset % chunk)
                take = min(take, room)
            piece = block[pos : pos + take]
            for chunk, hasher in hashers.items():
                hasher.update(piece)
                if (offset + take) % chunk == 0:
                    digests[chunk].append(hasher.digest())
                    hashers[chunk] = hasher = hashlib.md5(usedforsecurity=False)
            offset += take
            pos += take
    result: set[str] = set()
    for chunk, hasher in hashers.items():
        if offset % chunk:
            digests[chunk].append(hasher.digest())
        result.add(multipart_etag(digests[chunk]))
    return result
