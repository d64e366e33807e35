"""One bucket's batch through the phases: check, transfer, verify, settle.

Each phase returns outcomes, which go to the scan's recorder as they come; a
file moves on from phase to phase only as the outcomes say.
"""

from __future__ import annotations

import errno
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from . import check, lease, proof, transfer, verify
from .check import Target
from .config import Config
from .digest import FileChanged, FileUnreadable, Identity, unreadable
from .errors import AwsCliError
from .lease import Guard
from .outcome import Kind, Outcome, of_batch, of_file
from .scanner import Candidate
from .settle import WRITER, Proven, Trash, settle
from .spot import DrainRate, fit_before_deadline

Record = Callable[[Iterable[Outcome]], None]


def once_open(reported: set[Path], outcome: Outcome) -> Outcome:
    """A file held open by a writer is logged once (WARN), then at debug."""
    if outcome.kind is Kind.OPEN and outcome.path is not None:
        if outcome.path in reported:
            return outcome._replace(kind=Kind.STILL_OPEN)
        reported.add(outcome.path)
    return outcome


def writer_guard(
    files: Sequence[Candidate], reported: set[Path]
) -> tuple[list[Candidate], list[Outcome]]:
    """Leave out the files some process has open for writing (they wait, whatever their
    mtime) or that the daemon may not read; the others no longer count as open."""
    free: list[Candidate] = []
    outcomes: list[Outcome] = []
    for item in files:
        guard = lease.writer_state(item.path)
        if guard is Guard.WRITER:
            outcomes.append(once_open(reported, of_file(Kind.OPEN, item, WRITER)))
            continue
        if guard is Guard.UNREADABLE:
            reason = unreadable(PermissionError(errno.EACCES, "Permission denied"))
            outcomes.append(of_file(Kind.UNREADABLE, item, reason))
            continue
        reported.discard(item.path)
        if guard is Guard.UNAVAILABLE:
            outcomes.append(of_file(Kind.NO_LEASE, item, "no read lease here; identity rule only"))
        free.append(item)
    return free, outcomes


def _original(pair: tuple[Candidate, Path], copied: dict[Path, Identity]) -> tuple[Candidate, Path]:
    """A file staged by copy is uploaded from where it is when it goes one by one."""
    item, path = pair
    return (item, item.path) if path in copied else pair


@dataclass
class BucketRun:
    config: Config
    record: Record
    stop: threading.Event
    opaque: set[str]  # buckets whose ETags prove nothing, kept across scans
    open_files: set[Path]  # files reported open for writing, kept across scans
    drain: DrainRate  # this process's recent upload rate
    deadline: Callable[[], float | None]  # time.monotonic() by which uploads must be verified
    suspects: set[tuple[str, str]]  # (bucket, key) S3 may hold already: checked before upload
    _uploaded: int = 0  # bytes uploaded and verified in this run

    def _note(self, target: Target, outcomes: list[Outcome]) -> Target:
        """Record a phase's outcomes; a bucket found to have opaque ETags is remembered."""
        self.record(outcomes)
        if any(o.kind is Kind.OPAQUE for o in outcomes):
            self.opaque.add(target.bucket)
            return target._replace(opaque=True)
        return target

    def _settle(self, proven: Iterable[Proven]) -> None:
        trash = Trash(self.config.root, self.config.state_dir / "trash")
        for p in proven:
            outcome = once_open(
                self.open_files, settle(p, dry_run=self.config.dry_run, trash=trash)
            )
            if outcome.kind is Kind.UPLOADED:
                self._uploaded += outcome.size
            if outcome.kind in (Kind.UPLOADED, Kind.PRESENT):
                self.suspects.discard((p.item.bucket, p.item.key))
            self.record([outcome])

    def run(self, target: Target, files: list[Candidate]) -> None:
        """The bucket's files through check, transfer, verify and settle."""
        files, guarded = writer_guard(files, self.open_files)
        self.record(guarded)
        if not files:
            return
        every = self.config.dry_run or target.keep_existing
        first = {f for f in files if check.needs_check(f, self.suspects, every=every)}
        checked = check.lookup(target, [f for f in files if f in first])
        target = self._note(target, checked.outcomes)
        self._settle(checked.proven)
        pending = [f for f in files if f not in first] + checked.upload + checked.single
        if not pending:
            return
        if self.config.dry_run:
            self.record(of_file(Kind.WOULD_UPLOAD, item) for item in pending)
            return
        if self.stop.is_set():
            self.record([of_batch(Kind.STOPPED, target.bucket, len(pending))])
            return
        deadline = self.deadline()
        if deadline is not None:
            left = deadline - time.monotonic()
            pending, late = fit_before_deadline(pending, left, self.drain.rate())
            self.record(of_file(Kind.LATE, item) for item in late)
        if pending:
            self.suspects.update((item.bucket, item.key) for item in pending)
            self._transfer(target, pending, single=set(checked.single))

    def _transfer(
        self,
        target: Target,
        files: Sequence[Candidate],
        *,
        single: set[Candidate],
    ) -> None:
        """Upload, verify and settle: a batch of staged links, then the files that need
        one upload each (unlinkable, opaque ETags, or unprovable from the listing)."""
        started, before = time.monotonic(), self._uploaded
        staging = transfer.staging_dir(self.config.state_dir, target.bucket)
        try:
            pinned = transfer.stage(files, staging)
            if pinned.problem is not None:
                reason = (
                    f"{pinned.problem}; uploading {len(pinned.direct)} files from where they "
                    "are, unpinned (the proof after the upload still decides every delete)"
                )
                self.record([Outcome(Kind.NO_STAGING, target.bucket, reason=reason)])
            staged, copied = pinned.staged, pinned.copied
            loose = [(item, item.path) for item in pinned.direct]
            if target.opaque:
                single = set(files)
            one_by_one = [_original(pair, copied) for pair in staged + loose if pair[0] in single]
            batches = (
                (staging, [pair for pair in staged if pair[0] not in single]),
                (transfer.bucket_dir(files[0]), [pair for pair in loose if pair[0] not in single]),
            )
            for source, batch in batches:
                if batch and not self.stop.is_set():
                    target, unprovable = self._batch(target, source, batch, copied)
                    one_by_one += [_original(pair, copied) for pair in unprovable]
            for item, path in one_by_one:
                if self.stop.is_set():
                    break
                self._single(target, item, path)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            self.drain.record(self._uploaded - before, time.monotonic() - started)

    def _batch(
        self,
        target: Target,
        source: Path,
        staged: list[tuple[Candidate, Path]],
        copied: dict[Path, Identity],
    ) -> tuple[Target, list[tuple[Candidate, Path]]]:
        """Upload the files in one call (staged links from `source`, or, when `source` is
        the bucket directory, the files themselves), hashing them meanwhile; verify and
        settle. Returns the files a listing can't prove."""
        bucket_dir = transfer.bucket_dir(staged[0][0])
        pinned = source != bucket_dir
        with ThreadPoolExecutor(1, thread_name_prefix="hash") as hasher:
            paths = [path for _, path in staged]
            known = hasher.submit(transfer.fingerprints, paths, target.multipart)
            ran, outcomes = transfer.upload_batch(target, source, staged, bucket_dir, pinned=pinned)
            prints = known.result()
        prints = transfer.as_originals(prints, copied)
        self.record(outcomes)
        if not ran:
            return target, []
        try:
            remote = check.list_remote(target.cli, target.bucket, [i.key for i, _ in staged])
        except AwsCliError as exc:
            reason = check.cli_reason(exc)
            self.record([of_batch(Kind.LIST_FAILED, target.bucket, len(staged), reason)])
            return target, []
        verified = verify.verify(target, staged, remote, prints)
        target = self._note(target, verified.outcomes)
        self._settle(verified.proven)
        return target, verified.unprovable

    def _single(self, target: Target, item: Candidate, path: Path) -> None:
        head, ended = transfer.upload_single(target, item, path)
        if ended is not None or head is None:
            self.record([ended or of_file(Kind.MISSING, item)])
            return
        try:
            checked = proof.prove(path, head, item.size, None, target.multipart)
        except FileUnreadable as exc:
            self.record([of_file(Kind.UNREADABLE, item, str(exc))])
            return
        except FileChanged as exc:
            self.record([of_file(Kind.CHANGED, item, str(exc))])
            return
        judged = verify.judge_upload(item, checked)
        if isinstance(judged, Proven):
            self._settle([judged])
        else:
            self.record([judged])
