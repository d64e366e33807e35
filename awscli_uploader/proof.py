"""Content proofs: does S3's object hold exactly this file's bytes?

S3's ETag of a single-part upload is the MD5 of the bytes; of a multipart
upload it is the MD5 of the parts' MD5s followed by `-<parts>`. The part size is
the CLI's chunk size, which a user may configure, so every chunk size that
yields the object's part count is tried.
"""

from __future__ import annotations

import enum
import hashlib
import os
import re
import stat
from pathlib import Path
from typing import NamedTuple

MIB = 1024 * 1024
CLI_CHUNK_SIZE = 8 * MIB  # the AWS CLI's default multipart_chunksize and threshold
MIN_PART = 5 * MIB
MAX_PART = 5 * 1024 * MIB
MAX_PARTS = 10_000
MAX_CANDIDATES = 8
_ETAG = re.compile(r'^"?([0-9a-fA-F]{32})(?:-([0-9]+))?"?$')


class RemoteObject(NamedTuple):
    key: str
    size: int
    etag: str


class Identity(NamedTuple):
    """What must not change between hashing a file and deleting it."""

    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, info: os.stat_result) -> Identity:
        return cls(info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


class Verdict(enum.Enum):
    SAME = "same"
    DIFFERENT = "different"
    UNPROVABLE = "unprovable"


class Proof(NamedTuple):
    verdict: Verdict
    reason: str
    identity: Identity | None = None  # the file as it was hashed, when it was


class FileChanged(Exception):
    """The file changed, vanished or stopped being a regular file while it was read."""


def parse_etag(etag: str) -> tuple[str, int | None] | None:
    """(hex digest, part count or None for single-part), or None if not an MD5-style ETag."""
    match = _ETAG.match(etag.strip())
    if match is None:
        return None
    parts = int(match.group(2)) if match.group(2) is not None else None
    return match.group(1).lower(), parts


def cli_chunk_size(size: int, chunk_size: int = CLI_CHUNK_SIZE) -> int:
    """The part size the CLI uses for `size` bytes (it doubles past 10,000 parts)."""
    chunk = min(max(chunk_size, MIN_PART), MAX_PART)
    while -(-size // chunk) > MAX_PARTS:
        chunk *= 2
    return chunk


def candidate_chunk_sizes(size: int, parts: int) -> list[int]:
    """Part sizes that split `size` bytes into exactly `parts` parts, likeliest first.

    The CLI's default comes first, then whole MiB sizes (what users configure).
    """
    if parts < 1 or size < 0:
        return []

    def fits(chunk: int) -> bool:
        return chunk > 0 and -(-size // chunk) == parts if size else parts == 1

    found: list[int] = []
    default = cli_chunk_size(size)
    if fits(default):
        found.append(default)
    low = -(-size // parts)  # smallest chunk giving `parts` parts
    mib = max(1, -(-low // MIB))
    while len(found) < MAX_CANDIDATES and mib * MIB <= max(size, MIB):
        chunk = mib * MIB
        if not fits(chunk):
            break
        if chunk not in found:
            found.append(chunk)
        mib += 1
    return found


def multipart_etag(part_digests: list[bytes]) -> str:
    return hashlib.md5(b"".join(part_digests)).hexdigest() + f"-{len(part_digests)}"


def local_etags(path: Path, remote_etag: str) -> tuple[set[str], Identity] | None:
    """The ETags this file would have in each way the remote one may have been made.

    Returns None when the remote ETag is not MD5-style. Raises FileChanged when
    the file changed while it was read, so no verdict rests on torn bytes.
    """
    parsed = parse_etag(remote_etag)
    if parsed is None:
        return None
    _, parts = parsed
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise FileChanged(f"cannot open: {exc.strerror}") from exc
    with os.fdopen(fd, "rb", buffering=0) as handle:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode):
            raise FileChanged("no longer a regular file")
        if parts is None:
            whole = hashlib.md5()
            for block in iter(lambda: handle.read(MIB), b""):
                whole.update(block)
            etags = {whole.hexdigest()}
        else:
            etags = _multipart_etags(handle, before.st_size, parts)
        after = os.fstat(fd)
    identity = Identity.of(after)
    if Identity.of(before) != identity or identity.size != before.st_size:
        raise FileChanged("changed while it was read")
    return etags, identity


def _multipart_etags(handle: object, size: int, parts: int) -> set[str]:
    chunks = candidate_chunk_sizes(size, parts)
    hashers = {chunk: hashlib.md5() for chunk in chunks}
    digests: dict[int, list[bytes]] = {chunk: [] for chunk in chunks}
    offset = 0
    read = handle.read  # type: ignore[attr-defined]
    for block in iter(lambda: read(MIB), b""):
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
                    hashers[chunk] = hasher = hashlib.md5()
            offset += take
            pos += take
    result: set[str] = set()
    for chunk, hasher in hashers.items():
        if offset % chunk:
            digests[chunk].append(hasher.digest())
        result.add(multipart_etag(digests[chunk]))
    return result


def judge(remote: RemoteObject, size: int, etags: set[str] | None) -> tuple[Verdict, str]:
    """Pure verdict from the object's size and ETag and the file's size and ETags."""
    if remote.size != size:
        return Verdict.DIFFERENT, f"size differs (S3 {remote.size}, local {size})"
    parsed = parse_etag(remote.etag)
    if parsed is None or etags is None:
        return Verdict.UNPROVABLE, f"ETag {remote.etag!r} is not an MD5 of the content"
    hexdigest, parts = parsed
    expected = hexdigest if parts is None else f"{hexdigest}-{parts}"
    if expected in etags:
        return Verdict.SAME, "same size and content"
    return Verdict.DIFFERENT, "same size, different content"


def prove(path: Path, remote: RemoteObject, size: int) -> Proof:
    """Compare the file with S3's object; hashes only when the sizes agree.

    Raises FileChanged when the file changes while it is read.
    """
    hashed = local_etags(path, remote.etag) if remote.size == size else None
    if hashed is None:
        return Proof(*judge(remote, size, None))
    etags, identity = hashed
    return Proof(*judge(remote, identity.size, etags), identity)
