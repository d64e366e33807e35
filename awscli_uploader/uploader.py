"""One scan: plan per bucket, check S3, upload in one batch, verify, delete.

A local file is deleted only when S3's object matches it by size and content
(see proof.py) and the file is still the very file that was hashed.
"""

from __future__ import annotations

import enum
import errno
import logging
import os
import shutil
import stat
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import cleanup, proof, scanner
from .awscli import AwsCli, classify
from .config import STATE_DIR_NAME, Config
from .errors import AwsCliError
from .proof import FileChanged, Fingerprint, Identity, RemoteObject, Verdict
from .scanner import Candidate, SkipKind, Skipped, display
from .spot import DrainRate, fit_before_deadline

MAX_UNSTABLE_LINES = 20
MAX_LISTINGS = 4  # per bucket and phase, run in parallel
PARALLEL_BUCKETS = 4  # buckets handled at once: each is one aws process at a time


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


@dataclass
class BucketTally:
    uploaded: int = 0
    uploaded_bytes: int = 0
    present: int = 0
    failed: int = 0

    def add(self, other: BucketTally) -> None:
        self.uploaded += other.uploaded
        self.uploaded_bytes += other.uploaded_bytes
        self.present += other.present
        self.failed += other.failed


@dataclass
class Stats:
    uploaded: int = 0
    uploaded_bytes: int = 0
    present: int = 0
    unstable: int = 0
    ignored: int = 0
    failed: int = 0
    seconds: float = 0.0
    excluded: int = 0
    started: float = field(default_factory=time.time)  # wall clock, for status and metrics
    buckets: dict[str, BucketTally] = field(default_factory=dict)

    def add(self, other: Stats) -> None:
        """Add another (a bucket's) counts and tallies to these."""
        for name in ("uploaded", "uploaded_bytes", "present", "unstable", "ignored", "failed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for bucket, theirs in other.buckets.items():
            self.tally(bucket).add(theirs)

    def tally(self, bucket: str) -> BucketTally:
        return self.buckets.setdefault(bucket, BucketTally())

    def summary(self) -> str:
        return (
            f"scan: uploaded {self.uploaded} ({self.uploaded_bytes} bytes), "
            f"already present {self.present}, unstable {self.unstable}, "
            f"failed {self.failed}, ignored {self.ignored}, in {self.seconds:.1f}s"
        )


class ScanObserver:
    """What a scan tells the outside (progress, status, metrics); this one tells no one."""

    def batch(self, by_bucket: Mapping[str, Sequence[Candidate]]) -> None:
        """The ready files, before any upload."""

    def bucket_started(self, bucket: str, files: Sequence[Candidate]) -> None:
        """A bucket's files are about to be checked and uploaded."""

    def bucket_done(self, bucket: str, files: Sequence[Candidate]) -> None:
        """A bucket's files are handled, whatever the outcome."""

    def scanned(self, stats: Stats) -> None:
        """The scan is over."""


@dataclass
class Uploader:
    config: Config
    cli: AwsCli
    log: logging.Logger
    stop: threading.Event = field(default_factory=threading.Event)
    deadline: float | None = None  # time.monotonic() by which uploads must be verified
    opaque: set[str] = field(default_factory=set)  # buckets whose ETags prove nothing (KMS)
    observer: ScanObserver = field(default_factory=ScanObserver)
    drain: DrainRate = field(default_factory=DrainRate)  # recent uploads' bytes/s

    def set_deadline(self, when: float | None) -> None:
        """From now on, start only uploads that fit before `when` (time.monotonic())."""
        self.deadline = when

    def scan_once(self) -> Stats:
        """Scan the root once and move every ready file; errors are logged, not raised."""
        started = time.monotonic()
        stats = Stats()
        by_bucket: dict[str, list[Candidate]] = {}
        for item in scanner.scan(
            self.config.root,
            now_ns=time.time_ns(),
            stability=self.config.stability,
            reserved=frozenset({STATE_DIR_NAME}),
            excludes=self.config.excludes,
            bucket_map=self.config.bucket_map,
        ):
            if isinstance(item, Skipped):
                self._report_skip(item, stats)
            else:
                by_bucket.setdefault(item.bucket, []).append(item)
        if stats.unstable > MAX_UNSTABLE_LINES:
            self.log.warning(
                "%d more files still being written; waiting", stats.unstable - MAX_UNSTABLE_LINES
            )
        self.observer.batch(by_bucket)
        buckets = sorted(by_bucket)
        workers = max(1, min(PARALLEL_BUCKETS, len(buckets)))
        with ThreadPoolExecutor(workers, thread_name_prefix="bucket") as pool:
            for own in pool.map(lambda b: self._bucket_tallied(b, by_bucket[b]), buckets):
                stats.add(own)
        stats.seconds = time.monotonic() - started
        self.log.info(stats.summary())
        self.observer.scanned(stats)
        return stats

    def _bucket_tallied(self, bucket: str, files: list[Candidate]) -> Stats:
        """`_bucket` with stats of its own (buckets run in parallel), tallied for the
        bucket; with --delete-empty-dirs, then remove the directories its deletions emptied."""
        own = Stats()
        if self.stop.is_set():
            self.log.info("stopping: s3://%s left for the next run", bucket)
            return own
        self.observer.bucket_started(bucket, files)
        try:
            self._bucket(bucket, files, own)
        finally:
            own.tally(bucket).add(
                BucketTally(own.uploaded, own.uploaded_bytes, own.present, own.failed)
            )
        if self.config.delete_empty_dirs and not self.config.dry_run:
            emptied = {f.path.parent for f in files if not os.path.lexists(f.path)}
            for directory in cleanup.remove_emptied_dirs(self.config.root, emptied):
                self.log.debug("%s: removed empty directory", display(directory))
        self.observer.bucket_done(bucket, files)
        return own

    def _report_skip(self, item: Skipped, stats: Stats) -> None:
        where = display(item.path)
        if item.kind is SkipKind.UNSTABLE:
            stats.unstable += 1
            if stats.unstable <= MAX_UNSTABLE_LINES:
                self.log.warning("%s: %s", where, item.reason)
        elif item.kind is SkipKind.IGNORED:
            stats.ignored += 1
            self.log.warning("%s: %s", where, item.reason)
        elif item.kind is SkipKind.EXCLUDED:
            stats.excluded += 1
            self.log.debug("%s: %s", where, item.reason)
        else:
            stats.failed += 1
            stats.tally(self._bucket_of(item.path)).failed += 1
            self.log.error("%s: %s", where, item.reason)

    def _bucket_of(self, path: Path) -> str:
        """The bucket a skipped path counts against: its top directory's bucket, or ""."""
        try:
            parts = path.relative_to(self.config.root).parts
        except ValueError:
            return ""
        return scanner.bucket_for(parts[0], self.config.bucket_map)[0] if parts else ""

    def _bucket(self, bucket: str, files: list[Candidate], stats: Stats) -> None:
        remote = self._list(bucket, [f.key for f in files], stats)
        if remote is None:
            return
        pending: list[Candidate] = []
        for item in files:
            obj = remote.get(item.key)
            verdict = None
            if obj is not None:
                checked = self._check(bucket, item, item.path, obj, stats)
                if checked is None:
                    continue
                verdict, reason, identity = checked
                if verdict is Verdict.SAME and identity is not None:
                    self._delete(item, identity, "already in S3", stats, present=True)
                    continue
                self.log.info(
                    "%s: S3 holds another version (%s); uploading",
                    _url(item),
                    reason,
                    extra=_fields(item),
                )
            if decide(verdict, uploaded=False) is Action.UPLOAD:
                pending.append(item)
        if not pending:
            return
        if self.config.dry_run:
            for item in pending:
                self.log.info(
                    "%s: would upload %d bytes", _url(item), item.size, extra=_fields(item)
                )
            return
        if self.stop.is_set():
            self.log.info("stopping: %d files in %s left for the next run", len(pending), bucket)
            return
        if self.deadline is not None:
            seconds_left = self.deadline - time.monotonic()
            pending, late = fit_before_deadline(pending, seconds_left, self.drain.rate())
            for item in late:
                self.log.warning(
                    "%s: no time to upload before the interruption; kept",
                    _url(item),
                    extra=_fields(item),
                )
            if not pending:
                return
        self._upload_and_verify(bucket, pending, stats)

    def _list(
        self, bucket: str, keys: Sequence[str], stats: Stats
    ) -> dict[str, RemoteObject] | None:
        """What S3 holds under the keys' listing prefixes; None (logged) on failure."""
        count = len(keys)
        prefixes = listing_prefixes(keys)
        try:
            if len(prefixes) == 1:
                return self.cli.list_objects(bucket, prefixes[0])
            found: dict[str, RemoteObject] = {}
            with ThreadPoolExecutor(len(prefixes), thread_name_prefix="list") as pool:
                for part in pool.map(lambda p: self.cli.list_objects(bucket, p), prefixes):
                    found.update(part)
            return found
        except AwsCliError as exc:
            stats.failed += count
            self.log.error(
                "s3://%s: cannot list (%s): %s; %d files stay local",
                bucket,
                classify(exc.stderr).value,
                exc.summary(),
                count,
                extra={"bucket": bucket},
            )
            return None

    def _prove(
        self,
        item: Candidate,
        path: Path,
        obj: RemoteObject,
        stats: Stats,
        known: Fingerprint | None = None,
    ) -> proof.Proof | None:
        try:
            return proof.prove(path, obj, item.size, known)
        except FileChanged as exc:
            stats.unstable += 1
            self.log.warning("%s: %s; kept for the next scan", display(item.path), exc)
            return None

    def _check(
        self,
        bucket: str,
        item: Candidate,
        path: Path,
        obj: RemoteObject,
        stats: Stats,
        known: Fingerprint | None = None,
    ) -> proof.Proof | None:
        """Prove from the listing; when it disagrees at the same size, ask head-object
        for what a listing lacks: the stored SHA-256 and the encryption (KMS ETags)."""
        checked = self._prove(item, path, obj, stats, known)
        if checked is None or checked.verdict is Verdict.SAME or obj.size != item.size:
            return checked
        try:
            head = self.cli.head_object(bucket, item.key)
        except AwsCliError as exc:
            self.log.warning(
                "%s: head-object failed: %s", _url(item), exc.summary(), extra=_fields(item)
            )
            return checked
        if head is None or (head.sha256 is None and proof.etag_is_digest(head)):
            return checked
        if not proof.etag_is_digest(head) and bucket not in self.opaque:
            self.opaque.add(bucket)
            self.log.info("s3://%s: %s ETags; proving content by SHA-256", bucket, head.encryption)
        return self._prove(item, path, head, stats)

    def _delete(
        self, item: Candidate, identity: Identity, why: str, stats: Stats, *, present: bool
    ) -> None:
        if self.config.dry_run:
            self.log.info(
                "%s: %s with the same content; would delete local copy",
                _url(item),
                why,
                extra=_fields(item),
            )
            stats.present += present
            return
        problem = delete_if_unchanged(item.path, identity)
        if problem is not None:
            stats.failed += 1
            self.log.warning(
                "%s: %s, but not deleted: %s",
                display(item.path),
                why,
                problem,
                extra=_fields(item),
            )
            return
        if present:
            stats.present += 1
            self.log.info(
                "%s: already in S3 with the same content; deleted local copy",
                _url(item),
                extra=_fields(item),
            )
        else:
            stats.uploaded += 1
            stats.uploaded_bytes += identity.size
            self.log.info(
                "%s: uploaded %d bytes, verified, deleted",
                _url(item),
                identity.size,
                extra=_fields(item, identity.size),
            )

    def _upload_and_verify(self, bucket: str, files: Sequence[Candidate], stats: Stats) -> None:
        staging = self.config.state_dir / "staging" / f"{bucket}-{os.getpid()}"
        staged, direct = stage(files, staging)
        single = [(item, item.path) for item in direct]
        if bucket in self.opaque:
            single, staged = single + staged, []
        total = sum(item.size for item, _ in staged)
        started, before = time.monotonic(), stats.uploaded_bytes
        try:
            if staged:
                with ThreadPoolExecutor(1, thread_name_prefix="hash") as hasher:
                    known = hasher.submit(fingerprints, [path for _, path in staged])
                    uploaded = self._run_upload(bucket, staging, total, len(staged), stats)
                    prints = known.result()
                if uploaded:
                    single += self._verify(bucket, staged, stats, prints)
            for item, path in single:
                if self.stop.is_set():
                    break
                self._upload_one(bucket, item, path, stats)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            self.drain.record(stats.uploaded_bytes - before, time.monotonic() - started)

    def _upload_one(self, bucket: str, item: Candidate, path: Path, stats: Stats) -> None:
        """One `cp` that stores the file's SHA-256 with the object, verified by head-object:
        the path for KMS buckets, where an ETag proves nothing, and unlinkable files."""
        try:
            sha256, _ = proof.local_sha256(path)
        except FileChanged as exc:
            stats.unstable += 1
            self.log.warning("%s: %s; kept for the next scan", display(item.path), exc)
            return
        try:
            self.cli.upload_file(path, bucket, item.key, size=item.size, sha256=sha256)
            head = self.cli.head_object(bucket, item.key)
        except AwsCliError as exc:
            stats.failed += 1
            self.log.error("%s: upload failed: %s", _url(item), exc.summary(), extra=_fields(item))
            return
        if head is None:
            stats.failed += 1
            self.log.error("%s: not in S3 after the upload; kept", _url(item), extra=_fields(item))
            return
        self._settle(item, path, head, stats)

    def _run_upload(self, bucket: str, staging: Path, total: int, count: int, stats: Stats) -> bool:
        try:
            result = self.cli.upload_tree(staging, bucket, total_bytes=total)
        except AwsCliError as exc:
            stats.failed += count
            self.log.error(
                "s3://%s: upload of %d files failed (%s): %s; they stay local",
                bucket,
                count,
                classify(exc.stderr).value,
                exc.summary(),
                extra={"bucket": bucket},
            )
            return False
        bucket_dir = str(self.config.root / bucket)
        for line in result.stderr.splitlines():
            if line.strip():
                self.log.error("%s", line.replace(str(staging), bucket_dir))
        return True

    def _verify(
        self,
        bucket: str,
        uploaded: Sequence[tuple[Candidate, Path]],
        stats: Stats,
        known: Mapping[Path, Fingerprint],
    ) -> list[tuple[Candidate, Path]]:
        """Check a batch against a fresh listing; returns the files whose objects can't
        be proven by ETag (KMS), for the per-file path."""
        remote = self._list(bucket, [item.key for item, _ in uploaded], stats)
        if remote is None:
            return []
        unprovable: list[tuple[Candidate, Path]] = []
        for item, path in uploaded:
            obj = remote.get(item.key)
            if obj is None:
                stats.failed += 1
                self.log.error(
                    "%s: not in S3 after the upload; kept", _url(item), extra=_fields(item)
                )
                continue
            checked = self._check(bucket, item, path, obj, stats, known.get(path))
            if checked is not None and checked.verdict is Verdict.UNPROVABLE:
                unprovable.append((item, path))
            elif checked is not None:
                self._settle(item, path, obj, stats, checked)
        return unprovable

    def _settle(
        self,
        item: Candidate,
        path: Path,
        obj: RemoteObject,
        stats: Stats,
        checked: proof.Proof | None = None,
    ) -> None:
        """After an upload: delete what is proven, keep (and count) the rest."""
        checked = checked or self._prove(item, path, obj, stats)
        if checked is None:
            return
        verdict, reason, identity = checked
        if decide(verdict, uploaded=True) is Action.DELETE and identity is not None:
            self._delete(item, identity, "uploaded", stats, present=False)
        else:
            stats.failed += 1
            self.log.error(
                "%s: S3 does not match after upload (%s); kept",
                _url(item),
                reason,
                extra=_fields(item),
            )


def _url(item: Candidate) -> str:
    return display(f"s3://{item.bucket}/{item.key}")


def _fields(item: Candidate, size: int | None = None) -> dict[str, Any]:
    """Structured fields of a per-file log line (shown by --log-format json)."""
    return {"bucket": item.bucket, "key": item.key, "bytes": item.size if size is None else size}


def fingerprints(paths: Sequence[Path]) -> dict[Path, Fingerprint]:
    """Fingerprints of the staged files; one that changes while read has none."""
    found: dict[Path, Fingerprint] = {}
    for path in paths:
        try:
            found[path] = proof.fingerprint(path)
        except FileChanged:
            continue
    return found


def stage(
    files: Sequence[Candidate], staging: Path
) -> tuple[list[tuple[Candidate, Path]], list[Candidate]]:
    """Hard-link each file into `staging` at its key, pinning the inode that gets uploaded.

    Files that can't be linked (another filesystem, protected hard links) are
    returned separately for a per-file upload.
    """
    staged: list[tuple[Candidate, Path]] = []
    direct: list[Candidate] = []
    staging.mkdir(parents=True, exist_ok=True, mode=0o700)
    for item in files:
        target = staging / item.key
        try:
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.link(item.path, target, follow_symlinks=False)
        except FileNotFoundError:
            continue
        except OSError as exc:
            if exc.errno in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EACCES):
                direct.append(item)
                continue
            raise
        if not stat.S_ISREG(os.lstat(target).st_mode):
            target.unlink()
            continue
        staged.append((item, target))
    return staged, direct


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


def clean_staging(state_dir: Path) -> None:
    """Remove hard links a killed run left behind (the originals stay in place)."""
    shutil.rmtree(state_dir / "staging", ignore_errors=True)
