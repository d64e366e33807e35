"""Content proofs: does S3's object hold exactly this file's bytes?

S3's ETag of a single-part upload is the MD5 of the bytes; of a multipart
upload it is the MD5 of the parts' MD5s followed by `-<parts>`. The layout the
CLI makes under the profile's `s3` settings (s3/settings.py) is tried first, then
other chunk sizes giving the object's part count; when none matches a part count
the CLI would not have made, the verdict is UNKNOWN_LAYOUT, never DIFFERENT.
Under SSE-KMS or SSE-C the ETag is no digest of the content; there a SHA-256
that the uploader stored in the object's metadata
(`x-amz-meta-awscli-uploader-sha256`) is the proof.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import BinaryIO, NamedTuple

from ..local.digest import md5_and_sha256, multipart_etags, read_pinned, whole
from ..model import MIB, Identity, RemoteObject, Verdict
from ..s3.settings import MultipartSettings, adjusted_chunksize, expected_layout

DEFAULTS = MultipartSettings()
MAX_CANDIDATES = 8
_ETAG = re.compile(r'^"?([0-9a-fA-F]{32})(?:-([0-9]+))?"?$')
OPAQUE_ENCRYPTION = frozenset({"aws:kms", "aws:kms:dsse", "sse-c"})


def etag_is_digest(remote: RemoteObject) -> bool:
    """Whether the ETag may be compared with an MD5 of the content (not under KMS or SSE-C)."""
    return (remote.encryption or "").lower() not in OPAQUE_ENCRYPTION


UNKNOWN_LAYOUT = "cannot prove: part layout unknown"


class Proof(NamedTuple):
    verdict: Verdict
    reason: str
    identity: Identity | None = None  # the file as it was hashed, when it was


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
        return read_pinned(path, whole("md5"))
    return read_pinned(
        path,
        lambda handle, size: multipart_etags(handle, candidate_chunk_sizes(size, parts, settings)),
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
            return whole("md5")(handle, size)
        return multipart_etags(handle, [layout.chunk])

    etags, identity = read_pinned(path, digest)
    return Fingerprint(next(iter(etags)), identity)


def local_sha256(path: Path) -> tuple[str, Identity]:
    """The file's SHA-256 and the identity it had while read."""
    digests, identity = read_pinned(path, whole("sha256"))
    return next(iter(digests)), identity


def local_digests(path: Path) -> tuple[str, str, Identity]:
    """The file's MD5 and SHA-256, in one read, and the identity it had while read."""
    (md5, sha256), identity = read_pinned(path, md5_and_sha256)
    return md5, sha256, identity


def etag_is_md5(remote: RemoteObject) -> bool:
    """Whether the ETag is S3's MD5 of the object's bytes: one part, not under KMS or SSE-C."""
    parsed = parse_etag(remote.etag)
    return etag_is_digest(remote) and parsed is not None and parsed[1] is None


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
        if remote.sha256.lower() != sha256:
            return Verdict.DIFFERENT, "same size, different SHA-256"
        # The SHA-256 in the metadata is what the upload said, not what S3 stored: where the
        # ETag is S3's own MD5 of the bytes, it must agree too (a store that took a body
        # other than the one hashed keeps our SHA-256 beside other bytes).
        parsed = parse_etag(remote.etag)
        if etags is not None and etag_is_md5(remote) and parsed and parsed[0] not in etags:
            return Verdict.DIFFERENT, "same size and SHA-256 said, but S3's MD5 differs"
        return Verdict.SAME, "same size and SHA-256"
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
        if etag_is_md5(remote):  # both to agree: the one read gives both
            md5, sha256, identity = local_digests(path)
            return Proof(*judge(remote, identity.size, {md5}, sha256), identity)
        sha256, identity = local_sha256(path)
        return Proof(*judge(remote, identity.size, None, sha256), identity)
    hashed = local_etags(path, remote.etag, settings) if etag_is_digest(remote) else None
    if hashed is None or parsed is None:
        return Proof(*judge(remote, size, None))
    etags, identity = hashed
    known_layout = layout_is_known(identity.size, parsed[1], settings)
    return Proof(*judge(remote, identity.size, etags, known_layout=known_layout), identity)
