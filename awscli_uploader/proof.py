"""Content proofs: does S3's object hold exactly this file's bytes?

S3's ETag of a single-part upload is the MD5 of the bytes; of a multipart
upload it is the MD5 of the parts' MD5s followed by `-<parts>`. The layout the
CLI makes under the profile's `s3` settings (s3settings.py) is tried first, then
other chunk sizes giving the object's part count; when none matches a part count
the CLI would not have made, the verdict is UNKNOWN_LAYOUT, never DIFFERENT.
Under SSE-KMS or SSE-C the ETag is no digest of the content; there a SHA-256
that the uploader stored in the object's metadata
(`x-amz-meta-awscli-uploader-sha256`) is the proof.
"""

from __future__ import annotations

import enum
import errno
import hashlib
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, NamedTuple

from .s3settings import MIB, MultipartSettings, adjusted_chunksize, expected_layout

DEFAULTS = MultipartSettings()
MAX_CANDIDATES = 8
_ETAG = re.compile(r'^"?([0-9a-fA-F]{32})(?:-([0-9]+))?"?$')
SHA256_METADATA = "awscli-uploader-sha256"
OPAQUE_ENCRYPTION = frozenset({"aws:kms", "aws:kms:dsse", "sse-c"})


class RemoteObject(NamedTuple):
    key: str
    size: int
    etag: str
    sha256: str | None = None  # from our metadata; only head-object returns it
    encryption: str | None = None  # ServerSideEncryption, or "sse-c"


def etag_is_digest(remote: RemoteObject) -> bool:
    """Whether the ETag may be compared with an MD5 of the content (not under KMS or SSE-C)."""
    return (remote.encryption or "").lower() not in OPAQUE_ENCRYPTION


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
    UNKNOWN_LAYOUT = "unknown layout"  # the ETag's parts are not the layout the CLI makes


UNKNOWN_LAYOUT = "cannot prove: part layout unknown"


class Proof(NamedTuple):
    verdict: Verdict
    reason: str
    identity: Identity | None = None  # the file as it was hashed, when it was


class FileChanged(Exception):
    """The file changed, vanished or stopped being a regular file while it was read."""


class FileUnreadable(FileChanged):
    """The file can't be read at all (permission, too many open files, an I/O error)."""


def unreadable(exc: OSError) -> str:
    """Why a file can't be read, and what to do about it."""
    if exc.errno in (errno.EACCES, errno.EPERM):
        return (
            f"permission denied: the daemon's user (uid {os.geteuid()}) can't read it; "
            "let it read the files (the writer's umask or group, or a default ACL)"
        )
    return f"cannot read: {exc.strerror or exc}"


def parse_etag(etag: str) -> tuple[str, int | None] | None:
    """(hex digest, part count or None for single-part), or None if not an MD5-style ETag."""
    match = _ETAG.match(etag.strip())
    if match is None:
        return None
    parts = int(match.group(2)) if match.group(2) is not None else None
    return match.group(1).lower(), parts


def candidate_chunk_sizes(
    size: int, parts: int, settings: MultipartSettings = DEFAULTS
) -> list[int]:
    """Part sizes that split `size` bytes into exactly `parts` parts, likeliest first.

    The layout the CLI makes under `settings` comes first, then the CLI's default
    chunk size, then whole MiB sizes (what other tools and settings use). One part
    needs no guess: every chunk of at least `size` bytes gives the same ETag.
    """
    if parts < 1 or size < 0:
        return []
    if parts == 1:
        return [max(size, 1)]

    def fits(chunk: int) -> bool:
        return -(-size // chunk) == parts

    found: list[int] = []
    for likely in (
        expected_layout(size, settings).chunk,
        adjusted_chunksize(size, DEFAULTS.chunksize),
    ):
        if fits(likely) and likely not in found:
            found.append(likely)
    low = -(-size // parts)  # smallest chunk giving `parts` parts
    mib = max(1, -(-low // MIB))
    while len(found) < MAX_CANDIDATES and fits(mib * MIB):
        if mib * MIB not in found:
            found.append(mib * MIB)
        mib += 1
    return found


def multipart_etag(part_digests: list[bytes]) -> str:
    return hashlib.md5(b"".join(part_digests)).hexdigest() + f"-{len(part_digests)}"


def _read_pinned(
    path: Path, digest: Callable[[BinaryIO, int], set[str]]
) -> tuple[set[str], Identity]:
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


def _whole(algorithm: str) -> Callable[[BinaryIO, int], set[str]]:
    def digest(handle: BinaryIO, size: int) -> set[str]:
        hasher = hashlib.new(algorithm)
        for block in iter(lambda: handle.read(MIB), b""):
            hasher.update(block)
        return {hasher.hexdigest()}

    return digest


def local_etags(
    path: Path, remote_etag: str, settings: MultipartSettings = DEFAULTS
) -> tuple[set[str], Identity] | None:
    """The ETags this file would have in each way the remote one may have been made.

    Returns None when the remote ETag is not MD5-style.
    """
    parsed = parse_etag(remote_etag)
    if parsed is None:
        return None
    parts = parsed[1]
    if parts is None:
        return _read_pinned(path, _whole("md5"))
    return _read_pinned(
        path,
        lambda handle, size: _multipart_etags(handle, candidate_chunk_sizes(size, parts, settings)),
    )


class Fingerprint(NamedTuple):
    """The ETag the CLI's upload gives a file, and the file as it was hashed."""

    etag: str
    identity: Identity


def fingerprint(path: Path, settings: MultipartSettings = DEFAULTS) -> Fingerprint:
    """Hash a file the way the CLI will upload it under `settings` (taken while the upload
    runs, so the verification after it need not read the file again)."""

    def digest(handle: BinaryIO, size: int) -> set[str]:
        layout = expected_layout(size, settings)
        if layout.parts is None:
            return _whole("md5")(handle, size)
        return _multipart_etags(handle, [layout.chunk])

    etags, identity = _read_pinned(path, digest)
    return Fingerprint(next(iter(etags)), identity)


def local_sha256(path: Path) -> tuple[str, Identity]:
    """The file's SHA-256 and the identity it had while read."""
    digests, identity = _read_pinned(path, _whole("sha256"))
    return next(iter(digests)), identity


def _multipart_etags(handle: BinaryIO, chunks: list[int]) -> set[str]:
    """The multipart ETag of the handle's bytes for each part size, in one read."""
    hashers = {chunk: hashlib.md5() for chunk in chunks}
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
                    hashers[chunk] = hasher = hashlib.md5()
            offset += take
            pos += take
    result: set[str] = set()
    for chunk, hasher in hashers.items():
        if offset % chunk:
            digests[chunk].append(hasher.digest())
        result.add(multipart_etag(digests[chunk]))
    return result


def layout_is_known(size: int, parts: int | None, settings: MultipartSettings) -> bool:
    """Whether an ETag of `parts` parts of `size` bytes can only have one value per
    content: a single PUT, one part, or the very layout the CLI makes under `settings`."""
    if parts is None or parts == 1:
        return True
    return settings.exact and expected_layout(size, settings).parts == parts


def judge(
    remote: RemoteObject,
    size: int,
    etags: set[str] | None,
    sha256: str | None = None,
    *,
    known_layout: bool = True,
) -> tuple[Verdict, str]:
    """Pure verdict from the object's size, stored SHA-256 or ETag, and the file's.

    An ETag of two or more parts that matches none of `etags` is DIFFERENT only when
    its layout is `known_layout`; otherwise nothing was proven either way.
    """
    if remote.size != size:
        return Verdict.DIFFERENT, f"size differs (S3 {remote.size}, local {size})"
    if remote.sha256 is not None and sha256 is not None:
        if remote.sha256.lower() == sha256:
            return Verdict.SAME, "same size and SHA-256"
        return Verdict.DIFFERENT, "same size, different SHA-256"
    if not etag_is_digest(remote):
        return Verdict.UNPROVABLE, f"ETag of a {remote.encryption} object is not a content digest"
    parsed = parse_etag(remote.etag)
    if parsed is None or etags is None:
        return Verdict.UNPROVABLE, f"ETag {remote.etag!r} is not an MD5 of the content"
    hexdigest, parts = parsed
    expected = hexdigest if parts is None else f"{hexdigest}-{parts}"
    if expected in etags:
        return Verdict.SAME, "same size and content"
    if not known_layout and parts is not None and parts > 1:
        return Verdict.UNKNOWN_LAYOUT, f"{UNKNOWN_LAYOUT} ({parts} parts)"
    return Verdict.DIFFERENT, "same size, different content"


def prove(
    path: Path,
    remote: RemoteObject,
    size: int,
    known: Fingerprint | None = None,
    settings: MultipartSettings = DEFAULTS,
) -> Proof:
    """Compare the file with S3's object; hashes only when the sizes agree, and not at
    all when a fingerprint `known` of the file has the object's part layout.

    Raises FileChanged when the file changes while it is read.
    """
    if remote.size != size:
        return Proof(*judge(remote, size, None))
    parsed = parse_etag(remote.etag)
    if (
        known is not None
        and remote.sha256 is None
        and etag_is_digest(remote)
        and parsed is not None
        and parsed[1] == (parse_etag(known.etag) or ("", -1))[1]
    ):
        verdict = judge(remote, known.identity.size, {known.etag})
        if verdict[0] is Verdict.SAME or layout_is_known(size, parsed[1], settings):
            return Proof(*verdict, known.identity)
    if remote.sha256 is not None:
        sha256, identity = local_sha256(path)
        return Proof(*judge(remote, identity.size, None, sha256), identity)
    hashed = local_etags(path, remote.etag, settings) if etag_is_digest(remote) else None
    if hashed is None or parsed is None:
        return Proof(*judge(remote, size, None))
    etags, identity = hashed
    known_layout = layout_is_known(identity.size, parsed[1], settings)
    return Proof(*judge(remote, identity.size, etags, known_layout=known_layout), identity)
