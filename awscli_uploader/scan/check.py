"""Proving files against S3, before their upload (check) and after it (verify).

One loop, `judge_all`, proves each file against what S3 holds under its key: a
listing gives sizes and ETags; when it disagrees at the same size, head-object
adds what a listing lacks (the stored SHA-256, the encryption that makes an
ETag opaque). `check` and `verify` only say what each verdict means before
and after an upload.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Container, Iterator, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from ..errors import AwsCliError
from ..local.digest import ReadFailed
from ..model import (
    MIB,
    Candidate,
    Identity,
    Kind,
    Outcome,
    Proven,
    RemoteObject,
    Verdict,
    of_batch,
    of_file,
)
from ..s3.awscli import classify
from ..s3.listing import list_remote
from . import proof
from .proof import Fingerprint, Proof
from .target import Target

CHECK_FIRST_BYTES = 8 * 1024 * 1024  # files this big are looked up before their upload
NEEDS_SHA256 = frozenset({Verdict.UNPROVABLE, Verdict.UNKNOWN_LAYOUT})


def cli_reason(exc: AwsCliError) -> str:
    """`(kind): summary` of a failed aws call, for a bucket-level outcome."""
    return f"({classify(exc.stderr).value}): {exc.summary()}"


def list_failed(bucket: str, files: int, exc: AwsCliError) -> Outcome:
    """A listing that failed (the files wait for the next scan), or that a stop cancelled
    (nothing failed)."""
    if exc.cancelled:
        return of_batch(Kind.STOPPED, bucket, files)
    return of_batch(Kind.LIST_FAILED, bucket, files, cli_reason(exc))


def not_tried(bucket: str, files: int, exc: AwsCliError) -> Outcome:
    """Files left untried: a listing of this scan said the bucket does not exist."""
    reason = f"({classify(exc.stderr).value}, said earlier in this scan): not tried"
    return of_batch(Kind.LIST_FAILED, bucket, files, reason)


def prove_file(
    target: Target, item: Candidate, path: Path, obj: RemoteObject, known: Fingerprint | None
) -> tuple[Proof | None, list[Outcome]]:
    """Prove the file at `path` against the object; at the same size but no proof, ask
    head-object. None (with the outcome that says why) when the file could not be read."""
    try:
        checked = proof.prove(path, obj, item.size, known, target.multipart)
        if checked.verdict is Verdict.SAME or obj.size != item.size:
            return checked, []
        try:
            head = target.cli.head_object(target.bucket, item.key)
        except AwsCliError as exc:
            return checked, [of_file(Kind.HEAD_FAILED, item, exc.summary())]
        if head is None or (head.sha256 is None and proof.etag_is_digest(head)):
            return checked, []
        notes = [] if proof.etag_is_digest(head) else target.found_opaque(head.encryption)
        return proof.prove(path, head, item.size, None, target.multipart), notes
    except ReadFailed as exc:
        return None, [of_file(exc.kind, item, str(exc))]


class Step(enum.Enum):
    """What a verdict means for the file."""

    DELETE = "delete"  # S3 holds its bytes
    UPLOAD = "upload"  # in the next batch
    SHA256 = "sha256"  # once, one by one, storing its SHA-256: no listing can prove it
    READ_BACK = "read back"  # compare with S3's bytes: under keep nothing unproven is replaced
    KEEP = "keep"  # for a later scan


def next_step(verdict: Verdict | None, *, uploaded: bool, keep_existing: bool = False) -> Step:
    """What to do with a file given S3's verdict (None: no object under its key), before
    its upload or after it. Before, anything short of a proven match is uploaded; under
    --if-exists keep other content is kept, and an object that can't be proven by its ETag
    is read back and compared by SHA-256 (an upload would replace what may differ). After,
    a mismatch is kept for the next scan and an unprovable object goes once through the
    SHA-256 upload."""
    if verdict is Verdict.SAME:
        return Step.DELETE
    if uploaded:
        return Step.SHA256 if verdict in NEEDS_SHA256 else Step.KEEP
    if verdict is None:
        return Step.UPLOAD
    if keep_existing:
        return Step.READ_BACK if verdict in NEEDS_SHA256 else Step.KEEP
    return Step.SHA256 if verdict in NEEDS_SHA256 else Step.UPLOAD


class Judged(NamedTuple):
    item: Candidate
    path: Path  # what was read: the file, or its pinned staging link
    obj: RemoteObject | None  # None: S3 holds nothing under the key
    proof: Proof | None  # None: no object, or the file could not be read
    outcomes: list[Outcome]  # what proving it said on the way


def judge_all(
    target: Target,
    files: Sequence[tuple[Candidate, Path]],
    remote: Mapping[str, RemoteObject],
    known: Mapping[Path, Fingerprint],
) -> Iterator[Judged]:
    """Each file proven against S3's object under its key: the one proof loop."""
    for item, path in files:
        obj = remote.get(item.key)
        if obj is None:
            yield Judged(item, path, None, None, [])
            continue
        checked, outcomes = prove_file(target, item, path, obj, known.get(path))
        yield Judged(item, path, obj, checked, outcomes)


def needs_check(item: Candidate, suspects: Container[tuple[str, str]], *, every: bool) -> bool:
    """Whether S3 may already hold the file's key, so that it is looked up before the
    upload: a big file (never uploaded twice), a key an earlier attempt left unsettled, or
    `every` key (--if-exists keep, --dry-run). Any other file is new: it is uploaded
    straight away, and the proof after the upload decides its delete as always."""
    return every or item.size >= CHECK_FIRST_BYTES or (item.bucket, item.key) in suspects


class Checked(NamedTuple):
    upload: list[Candidate]
    proven: list[Proven]  # already in S3 with the same content
    outcomes: list[Outcome]
    single: list[Candidate]  # to upload one by one with a SHA-256: no listing can prove them
    read_back: list[tuple[Candidate, RemoteObject, str]]  # to prove by S3's bytes (keep), why

    @classmethod
    def nothing(cls, *outcomes: Outcome) -> Checked:
        """No file found, to upload or to read back: only what happened, if anything."""
        return cls([], [], list(outcomes), [], [])


def check(
    target: Target, files: Sequence[Candidate], remote: Mapping[str, RemoteObject]
) -> Checked:
    """Before the upload: files S3 already holds, files to upload, and what happened."""
    result = Checked.nothing()
    for judged in judge_all(target, [(f, f.path) for f in files], remote, {}):
        item, checked, obj = judged.item, judged.proof, judged.obj
        result.outcomes.extend(judged.outcomes)
        if obj is None:
            result.upload.append(item)
            continue
        if checked is None:
            continue
        step = next_step(checked.verdict, uploaded=False, keep_existing=target.keep_existing)
        if step is Step.DELETE and checked.identity is not None:
            result.proven.append(Proven(item, checked.identity, uploaded=False))
            continue
        reason = f"{checked.reason}; S3 {obj.size} bytes, local {item.size} bytes"
        if step is Step.KEEP:
            result.outcomes.append(of_file(Kind.EXISTS, item, reason))
            continue
        if step is Step.READ_BACK:
            result.read_back.append((item, obj, checked.reason))
            continue
        result.outcomes.append(of_file(Kind.REPLACING, item, reason))
        sha256 = step is Step.SHA256 or target.opaque
        (result.single if sha256 else result.upload).append(item)
    return result


def lookup(target: Target, files: list[Candidate]) -> Checked:
    """What S3 already holds of the files that may be there; when the listing fails,
    those files wait for the next scan."""
    if not files:
        return Checked.nothing()
    try:
        remote = list_remote(target.cli, target.bucket, [f.key for f in files])
    except AwsCliError as exc:
        target.missing.seen(exc)
        return Checked.nothing(list_failed(target.bucket, len(files), exc))
    return check(target, files, remote)


READ_BACK_RESERVE = 256 * MIB  # free space a read-back leaves on the root's filesystem


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged writer may still use on `path`'s filesystem."""
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def read_back(target: Target, item: Candidate, dest: Path) -> tuple[Proven | None, Outcome | None]:
    """Prove a file against an object its ETag can't prove (SSE-KMS without our SHA-256, a
    part layout the CLI would not make) where it must not be replaced (--if-exists keep):
    read the object back into `dest` and compare SHA-256s. Proven when they agree; else the
    outcome that says why the file stays."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        room = free_bytes(dest.parent)
        if room < item.size + READ_BACK_RESERVE:  # the writers' disk: never fill it
            why = (
                f"no room to read {item.size} bytes back: {room} bytes free, "
                f"{READ_BACK_RESERVE // MIB} MiB kept for the writers"
            )
            return None, of_file(Kind.READ_BACK_FAILED, item, why)
        obj = target.cli.read_back(target.bucket, item.key, dest, size=item.size)
        theirs, _ = proof.local_sha256(dest)
        ours, identity = proof.local_sha256(item.path)
    except AwsCliError as exc:
        if exc.cancelled:
            return None, of_batch(Kind.STOPPED, target.bucket, 1)
        return None, of_file(Kind.READ_BACK_FAILED, item, exc.summary())
    except ReadFailed as exc:
        return None, of_file(exc.kind, item, str(exc))
    except OSError as exc:  # no room to read it into
        return None, of_file(Kind.READ_BACK_FAILED, item, exc.strerror or str(exc))
    finally:
        dest.unlink(missing_ok=True)
    verdict, why = proof.judge(obj._replace(sha256=theirs), identity.size, None, ours)
    if verdict is Verdict.SAME:
        return Proven(item, identity, uploaded=False), None
    reason = f"{why}, read back; S3 {obj.size} bytes, local {identity.size} bytes"
    return None, of_file(Kind.EXISTS, item, reason)


class Verified(NamedTuple):
    proven: list[Proven]
    unprovable: list[tuple[Candidate, Path]]  # to upload once more, with a SHA-256
    outcomes: list[Outcome]


def verify(
    target: Target,
    uploaded: Sequence[tuple[Candidate, Path]],
    remote: Mapping[str, RemoteObject],
    known: Mapping[Path, Fingerprint],
    *,
    sha256_next: bool = True,
) -> Verified:
    """After the upload: each file proven (and handed to settle), kept with a reason, or
    unprovable from a listing (an opaque ETag, a part layout the CLI would not make): those
    go once more with a SHA-256 when `sha256_next`, else they are kept too."""
    result = Verified([], [], [])
    for judged in judge_all(target, uploaded, remote, known):
        item, checked = judged.item, judged.proof
        result.outcomes.extend(judged.outcomes)
        if judged.obj is None:
            result.outcomes.append(of_file(Kind.MISSING, item))
            continue
        if checked is None:
            continue
        step = next_step(checked.verdict, uploaded=True)
        if step is Step.DELETE and checked.identity is not None:
            result.proven.append(Proven(item, checked.identity, uploaded=True))
        elif step is Step.SHA256 and sha256_next:
            result.unprovable.append((item, judged.path))
        else:
            result.outcomes.append(of_file(Kind.MISMATCH, item, checked.reason))
    return result


def verify_put(item: Candidate, stored: RemoteObject, md5: str, hashed: Identity) -> Verified:
    """After a put-object whose answer's ETag is S3's own MD5 of what it stored (`etag_is_md5`):
    the file is proven, as it was when hashed (`hashed`, which the delete checks), when that
    is its MD5; else it is kept. No head-object: the SHA-256 it would show is only the one
    the upload sent, and the answer already says what S3 stored."""
    verdict, why = proof.judge(stored, hashed.size, {md5})
    if verdict is Verdict.SAME:
        return Verified([Proven(item, hashed, uploaded=True)], [], [])
    return Verified([], [], [of_file(Kind.MISMATCH, item, f"{why}, by its ETag")])
