"""The check phase: what S3 already holds under the batch's keys, proven file by file.

A listing gives sizes and ETags; when it disagrees at the same size,
head-object adds what a listing lacks (the stored SHA-256, the encryption
that makes an ETag opaque).
"""

from __future__ import annotations

import os
from collections.abc import Container, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

from . import proof
from .awscli import AwsCli, classify
from .digest import FileChanged, FileUnreadable
from .errors import AwsCliError
from .outcome import Kind, Outcome, of_batch, of_file
from .proof import DEFAULTS, Fingerprint, RemoteObject, Verdict
from .s3settings import MultipartSettings
from .scanner import Candidate
from .settle import Action, Proven, decide

MAX_LISTINGS = 4  # per bucket and phase, run in parallel (head-object calls too)
FIRST_PAGE = 1000  # objects the first listing of a batch's key range reads: one request
LIST_CHUNK = 10_000  # objects per listing process after the first page (bounds its memory)
MAX_HEADS = 16  # keys left past the first page that are asked about one by one
CHECK_FIRST_BYTES = 8 * 1024 * 1024  # files this big are looked up before their upload


def listing_prefixes(keys: Iterable[str]) -> list[str]:
    """Prefixes whose listings cover all keys and little else: the longest shared prefix,
    or when there is none, one per top-level directory (up to a few; beyond that, the
    whole bucket), so that unrelated objects elsewhere in the bucket cost nothing."""
    names = list(keys)
    shared = os.path.commonprefix(names)  # noqa: RUF071 - S3 prefixes are character-wise
    if shared:
        return [shared]
    groups: dict[str, list[str]] = {}
    for key in names:
        top, slash, _ = key.partition("/")
        groups.setdefault(top + slash, []).append(key)
    if len(groups) > MAX_LISTINGS:
        return [""]
    return sorted(os.path.commonprefix(group) for group in groups.values())  # noqa: RUF071


class Listing(NamedTuple):
    found: dict[str, RemoteObject]  # the batch's keys S3 holds, as listed
    unlisted: list[str]  # keys past the listing: to ask about one by one


def just_below(key: str) -> str:
    """A StartAfter that lists `key` itself and hardly anything before it."""
    return key[:-1]


def list_range(cli: AwsCli, bucket: str, prefix: str, keys: Sequence[str]) -> Listing:
    """List only the keys' range: from just below the smallest, one page first; when keys
    remain past it, few are left to head-object, many make the listing go on in bounded
    chunks (the CLI holds a whole listing in memory) until past the largest."""
    ordered = sorted(keys)
    wanted = set(ordered)
    found: dict[str, RemoteObject] = {}
    below = just_below(ordered[0])
    start, cap = (below if len(below) > len(prefix) else ""), FIRST_PAGE
    while True:
        part = cli.list_objects(bucket, prefix, start_after=start or None, max_items=cap)
        found.update((k, o) for k, o in part.items() if k in wanted)
        if len(part) < cap:
            return Listing(found, [])
        last = max(part)
        rest = [k for k in ordered if k > last]
        if len(rest) <= MAX_HEADS:
            return Listing(found, rest)
        start, cap = last, LIST_CHUNK


def head_each(cli: AwsCli, bucket: str, keys: Sequence[str]) -> dict[str, RemoteObject]:
    """head-object of each key, a few at a time: what S3 holds of them."""
    if not keys:
        return {}
    with ThreadPoolExecutor(min(MAX_LISTINGS, len(keys)), thread_name_prefix="head") as pool:
        heads = list(pool.map(lambda k: cli.head_object(bucket, k), keys))
    return {key: head for key, head in zip(keys, heads, strict=True) if head is not None}


def list_remote(cli: AwsCli, bucket: str, keys: Sequence[str]) -> dict[str, RemoteObject]:
    """What S3 holds of the keys: a range listing per listing prefix, then head-object of
    the keys past it. Raises AwsCliError."""
    groups: dict[str, list[str]] = {p: [] for p in listing_prefixes(keys)}
    for key in keys:
        groups[max(p for p in groups if key.startswith(p))].append(key)
    listed = [(prefix, group) for prefix, group in groups.items() if group]
    if not listed:
        return {}
    with ThreadPoolExecutor(len(listed), thread_name_prefix="list") as pool:
        listings = list(pool.map(lambda pg: list_range(cli, bucket, *pg), listed))
    found: dict[str, RemoteObject] = {}
    for listing in listings:
        found.update(listing.found)
    found.update(head_each(cli, bucket, [k for li in listings for k in li.unlisted]))
    return found


def cli_reason(exc: AwsCliError) -> str:
    """`(kind): summary` of a failed aws call, for a bucket-level outcome."""
    return f"({classify(exc.stderr).value}): {exc.summary()}"


class Target(NamedTuple):
    cli: AwsCli
    bucket: str
    opaque: bool  # the bucket's ETags are known to prove nothing (KMS, SSE-C)
    multipart: MultipartSettings = DEFAULTS  # the part layout the CLI uses
    keep_existing: bool = False  # --if-exists keep: never overwrite different content


def prove_file(
    target: Target,
    item: Candidate,
    path: Path,
    obj: RemoteObject,
    known: Fingerprint | None = None,
) -> tuple[proof.Proof | None, list[Outcome]]:
    """Prove the file against the listed object; at the same size but no proof, ask
    head-object. None (with a CHANGED outcome) when the file changed while read."""
    try:
        checked = proof.prove(path, obj, item.size, known, target.multipart)
    except FileUnreadable as exc:
        return None, [of_file(Kind.UNREADABLE, item, str(exc))]
    except FileChanged as exc:
        return None, [of_file(Kind.CHANGED, item, str(exc))]
    if checked.verdict is Verdict.SAME or obj.size != item.size:
        return checked, []
    try:
        head = target.cli.head_object(target.bucket, item.key)
    except AwsCliError as exc:
        return checked, [of_file(Kind.HEAD_FAILED, item, exc.summary())]
    if head is None or (head.sha256 is None and proof.etag_is_digest(head)):
        return checked, []
    notes: list[Outcome] = []
    if not proof.etag_is_digest(head) and not target.opaque:
        notes.append(Outcome(Kind.OPAQUE, target.bucket, reason=str(head.encryption)))
    try:
        return proof.prove(path, head, item.size, None, target.multipart), notes
    except FileChanged as exc:
        return None, [*notes, of_file(Kind.CHANGED, item, str(exc))]


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
    single: list[Candidate]  # to upload one by one with a SHA-256: the layout is unknown


def check(target: Target, files: Sequence[Candidate], remote: dict[str, RemoteObject]) -> Checked:
    """Split the batch: files S3 already holds, files to upload, and what happened."""
    upload: list[Candidate] = []
    proven: list[Proven] = []
    outcomes: list[Outcome] = []
    single: list[Candidate] = []
    for item in files:
        obj = remote.get(item.key)
        if obj is None:
            upload.append(item)
            continue
        checked, notes = prove_file(target, item, item.path, obj)
        outcomes += notes
        if any(o.kind is Kind.OPAQUE for o in notes):
            target = target._replace(opaque=True)
        if checked is None:
            continue
        if decide(checked.verdict, uploaded=False) is Action.DELETE and checked.identity:
            proven.append(Proven(item, checked.identity, uploaded=False))
            continue
        reason = f"{checked.reason}; S3 {obj.size} bytes, local {item.size} bytes"
        if target.keep_existing:
            outcomes.append(of_file(Kind.EXISTS, item, reason))
            continue
        outcomes.append(of_file(Kind.REPLACING, item, reason))
        (single if checked.verdict is Verdict.UNKNOWN_LAYOUT else upload).append(item)
    return Checked(upload, proven, outcomes, single)


def lookup(target: Target, files: list[Candidate]) -> Checked:
    """What S3 already holds of the files that may be there; when the listing fails,
    those files wait for the next scan."""
    if not files:
        return Checked([], [], [], [])
    try:
        remote = list_remote(target.cli, target.bucket, [f.key for f in files])
    except AwsCliError as exc:
        failed = of_batch(Kind.LIST_FAILED, target.bucket, len(files), cli_reason(exc))
        return Checked([], [], [failed], [])
    return check(target, files, remote)
