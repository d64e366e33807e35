"""One scan as phases: plan, check, transfer, verify, settle.

Each phase returns outcomes (outcome.py); the recorder (record.py) is the one
place that counts and logs them. A local file is deleted only when S3's object
matches it by size and content (proof.py) and the file is still the very file
that was hashed (settle.py).
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from . import check, cleanup, lease, proof, scanner, transfer, verify
from .awscli import AwsCli
from .check import Target
from .config import Config
from .errors import AwsCliError
from .lease import Guard
from .outcome import Kind, Outcome, of_batch, of_file, of_skip
from .proof import FileChanged, FileUnreadable, unreadable
from .record import Recorder
from .scanner import Candidate, SkipKind, Skipped
from .settle import WRITER, Proven, Trash, settle
from .stats import ScanObserver, Stats

HEARTBEAT_SECONDS = 600.0  # an idle daemon's summary reaches INFO this often
MAX_PLAN_WAIT = 10.0  # seconds a scan waits for files that are done by mtime, not yet by ctime
PARALLEL_BUCKETS = 4  # buckets handled at once: each is one aws process at a time
DRAIN_RATE = 10 * 1024 * 1024  # bytes/s assumed when racing a spot interruption
DRAIN_OVERHEAD = 5.0  # seconds per batch: CLI start, listing, verification

Record = Callable[[Iterable[Outcome]], None]


def fit_before_deadline(
    files: Sequence[Candidate], seconds_left: float
) -> tuple[list[Candidate], list[Candidate]]:
    """Split files into those whose upload and verification fit in the time left, smallest
    first, and those left alone (an upload cut off by the instance's end helps nobody)."""
    budget = (seconds_left - DRAIN_OVERHEAD) * DRAIN_RATE
    fit: list[Candidate] = []
    left: list[Candidate] = []
    for item in sorted(files, key=lambda f: f.size):
        if item.size <= budget:
            budget -= item.size
            fit.append(item)
        else:
            left.append(item)
    return fit, left


@dataclass
class Uploader:
    config: Config
    cli: AwsCli
    log: logging.Logger
    stop: threading.Event = field(default_factory=threading.Event)
    opaque: set[str] = field(default_factory=set)  # buckets whose ETags prove nothing (KMS)
    observer: ScanObserver = field(default_factory=ScanObserver)
    open_files: set[Path] = field(default_factory=set)  # reported open for writing
    sightings: scanner.Sightings = field(default_factory=scanner.Sightings)
    _deadline: float | None = None
    _last_heartbeat: float = float("-inf")  # time.monotonic() by which uploads must be verified

    def set_deadline(self, when: float | None) -> None:
        """Uploads from now on must be verified by `when` (time.monotonic())."""
        self._deadline = when

    def scan_once(self) -> Stats:
        """Scan the root once and move every ready file; errors are recorded, not raised."""
        started = time.monotonic()
        record = Recorder(self.log)
        by_bucket: dict[str, list[Candidate]] = {}
        for item in self._plan(record):
            if isinstance(item, Skipped):
                record([of_skip(item)])
            else:
                by_bucket.setdefault(item.bucket, []).append(item)
        record.planned()
        self.observer.batch(by_bucket)
        buckets = sorted(by_bucket)
        workers = max(1, min(PARALLEL_BUCKETS, len(buckets)))
        with ThreadPoolExecutor(workers, thread_name_prefix="bucket") as pool:
            list(pool.map(lambda b: self._bucket(b, by_bucket[b], record), buckets))
        heartbeat = started - self._last_heartbeat >= HEARTBEAT_SECONDS
        stats = record.finished(time.monotonic() - started, heartbeat=heartbeat)
        if heartbeat or stats.eventful:
            self._last_heartbeat = started
        self.observer.scanned(stats)
        return stats

    def _plan(self, record: Record) -> list[Candidate | Skipped]:
        """The plan; when files wait only on their ctime or on the daemon's own clock
        (an mtime set back, or from another clock), wait that short while and plan again."""
        found = scanner.plan(self.config, sightings=self.sightings)
        waiting = [i for i in found if isinstance(i, Skipped) and i.ready_in is not None]
        wait = max((i.ready_in or 0.0 for i in waiting), default=0.0)
        if not waiting or wait > MAX_PLAN_WAIT:
            return found
        record(
            Outcome(Kind.SKEW_SEEN, i.bucket, path=i.path, reason=i.reason)
            for i in waiting
            if i.kind is SkipKind.SKEWED
        )
        if self.stop.wait(wait + 0.05):
            return found
        return scanner.plan(self.config, sightings=self.sightings)

    def _bucket(self, bucket: str, files: list[Candidate], record: Recorder) -> None:
        """One bucket's files through the phases; with --delete-empty-dirs, then remove
        the directories its deletions emptied."""
        if self.stop.is_set():
            record([of_batch(Kind.STOPPED, bucket, len(files))])
            return
        record.stats.tally(bucket)
        self.observer.bucket_started(bucket, files)
        try:
            target = Target(
                self.cli,
                bucket,
                bucket in self.opaque,
                self.config.multipart,
                keep_existing=self.config.if_exists == "keep",
            )
            self._phases(target, files, record)
        finally:
            if self.config.delete_empty_dirs and not self.config.dry_run:
                emptied = {f.path.parent for f in files if not os.path.lexists(f.path)}
                removed = cleanup.remove_emptied_dirs(self.config.root, emptied)
                record(Outcome(Kind.DIR_REMOVED, bucket, path=path) for path in removed)
            self.observer.bucket_done(bucket, files)

    def _note(self, target: Target, outcomes: list[Outcome], record: Record) -> Target:
        """Record a phase's outcomes; a bucket found to have opaque ETags is remembered."""
        record(outcomes)
        if any(o.kind is Kind.OPAQUE for o in outcomes):
            self.opaque.add(target.bucket)
            return target._replace(opaque=True)
        return target

    def _settle(self, proven: Iterable[Proven], record: Record) -> None:
        trash = Trash(self.config.root, self.config.state_dir / "trash")
        record(self._once(settle(p, dry_run=self.config.dry_run, trash=trash)) for p in proven)

    def _once(self, outcome: Outcome) -> Outcome:
        """A file held open by a writer is logged once (WARN), then at debug."""
        if outcome.kind is Kind.OPEN and outcome.path is not None:
            if outcome.path in self.open_files:
                return outcome._replace(kind=Kind.STILL_OPEN)
            self.open_files.add(outcome.path)
        return outcome

    def _guard(self, files: list[Candidate], record: Record) -> list[Candidate]:
        """Leave out the files some process has open for writing (they wait, whatever
        their mtime); the others no longer count as open."""
        free: list[Candidate] = []
        for item in files:
            guard = lease.writer_state(item.path)
            if guard is Guard.WRITER:
                record([self._once(of_file(Kind.OPEN, item, WRITER))])
                continue
            if guard is Guard.UNREADABLE:
                reason = unreadable(PermissionError(errno.EACCES, "Permission denied"))
                record([of_file(Kind.UNREADABLE, item, reason)])
                continue
            self.open_files.discard(item.path)
            if guard is Guard.UNAVAILABLE:
                record([of_file(Kind.NO_LEASE, item, "no read lease here; identity rule only")])
            free.append(item)
        return free

    def _phases(self, target: Target, files: list[Candidate], record: Record) -> None:
        files = self._guard(files, record)
        if not files:
            return
        try:
            remote = check.list_remote(target.cli, target.bucket, [f.key for f in files])
        except AwsCliError as exc:
            record([of_batch(Kind.LIST_FAILED, target.bucket, len(files), check.cli_reason(exc))])
            return
        checked = check.check(target, files, remote)
        target = self._note(target, checked.outcomes, record)
        self._settle(checked.proven, record)
        pending = checked.upload + checked.single
        if not pending:
            return
        if self.config.dry_run:
            record(of_file(Kind.WOULD_UPLOAD, item) for item in pending)
            return
        if self.stop.is_set():
            record([of_batch(Kind.STOPPED, target.bucket, len(pending))])
            return
        if self._deadline is not None:
            pending, late = fit_before_deadline(pending, self._deadline - time.monotonic())
            record(of_file(Kind.LATE, item) for item in late)
        if pending:
            self._transfer(target, pending, record, single=set(checked.single))

    def _transfer(
        self,
        target: Target,
        files: Sequence[Candidate],
        record: Record,
        *,
        single: set[Candidate],
    ) -> None:
        """Upload, verify and settle: a batch of staged links, then the files that need
        one upload each (unlinkable, opaque ETags, or unprovable from the listing)."""
        staging = self.config.state_dir / "staging" / f"{target.bucket}-{os.getpid()}"
        try:
            staged, direct, problem = transfer.stage(files, staging)
            if problem is not None:
                reason = (
                    f"{problem}; uploading {len(direct)} files from where they are, "
                    "one by one (the proof after each upload still decides every delete)"
                )
                record([Outcome(Kind.NO_STAGING, target.bucket, reason=reason)])
            one_by_one = [(item, item.path) for item in direct]
            if target.opaque:
                one_by_one, staged = one_by_one + staged, []
            one_by_one += [pair for pair in staged if pair[0] in single]
            staged = [pair for pair in staged if pair[0] not in single]
            if staged:
                target, unprovable = self._batch(target, staging, staged, record)
                one_by_one += unprovable
            for item, path in one_by_one:
                if self.stop.is_set():
                    break
                self._single(target, item, path, record)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _batch(
        self,
        target: Target,
        staging: Path,
        staged: list[tuple[Candidate, Path]],
        record: Record,
    ) -> tuple[Target, list[tuple[Candidate, Path]]]:
        """Upload the staged links in one call, hashing them meanwhile; verify and settle.
        Returns the files a listing can't prove."""
        with ThreadPoolExecutor(1, thread_name_prefix="hash") as hasher:
            paths = [path for _, path in staged]
            known = hasher.submit(transfer.fingerprints, paths, target.multipart)
            bucket_dir = self.config.root / target.bucket
            ran, outcomes = transfer.upload_batch(target, staging, staged, bucket_dir)
            prints = known.result()
        record(outcomes)
        if not ran:
            return target, []
        try:
            remote = check.list_remote(target.cli, target.bucket, [i.key for i, _ in staged])
        except AwsCliError as exc:
            reason = check.cli_reason(exc)
            record([of_batch(Kind.LIST_FAILED, target.bucket, len(staged), reason)])
            return target, []
        verified = verify.verify(target, staged, remote, prints)
        target = self._note(target, verified.outcomes, record)
        self._settle(verified.proven, record)
        return target, verified.unprovable

    def _single(self, target: Target, item: Candidate, path: Path, record: Record) -> None:
        head, ended = transfer.upload_single(target, item, path)
        if ended is not None or head is None:
            record([ended or of_file(Kind.MISSING, item)])
            return
        try:
            checked = proof.prove(path, head, item.size, None, target.multipart)
        except FileUnreadable as exc:
            record([of_file(Kind.UNREADABLE, item, str(exc))])
            return
        except FileChanged as exc:
            record([of_file(Kind.CHANGED, item, str(exc))])
            return
        judged = verify.judge_upload(item, checked)
        if isinstance(judged, Proven):
            self._settle([judged], record)
        else:
            record([judged])
