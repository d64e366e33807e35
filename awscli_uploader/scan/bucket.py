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
from typing import TypeVar

from ..config import Config
from ..errors import AwsCliError
from ..local import lease
from ..local.digest import unreadable
from ..local.lease import Guard
from ..model import Candidate, Identity, Kind, Outcome, Proven, of_batch, of_file
from ..s3.listing import list_remote
from . import check, transfer
from .deadline import DrainRate, fit_before_deadline
from .leftovers import Leftovers
from .settle import WRITER, settle
from .target import Suspects, Target

Record = Callable[[Iterable[Outcome]], None]
Done = TypeVar("Done")
HASHED_AGAIN = "it changed between its hash and its proof"
TAKEN = "another writer created it during the upload (412 Precondition Failed)"
MAX_PUTS = 4  # put-objects (--if-exists keep) at once per bucket, each an aws process


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
    """One bucket's chunks through the phases, in one scan; what outlives the scan (the
    open files reported, the drain rate, the unsettled keys) is the uploader's."""

    config: Config
    target: Target  # the bucket's context, shared by all its chunks
    record: Record
    stop: threading.Event
    open_files: set[Path]  # files reported open for writing, kept across scans
    drain: DrainRate  # this process's recent upload rate
    deadline: Callable[[], float | None]  # time.monotonic() by which uploads must be verified
    suspects: Suspects  # (bucket, key) S3 may hold already: checked before upload
    leftovers: Leftovers  # multipart uploads to abort
    _uploaded: int = 0  # bytes uploaded and verified in this run

    def _settle(self, proven: Iterable[Proven]) -> None:
        trash = self.config.state.trash
        for p in proven:
            outcome = once_open(
                self.open_files, settle(p, dry_run=self.config.dry_run, trash=trash)
            )
            if outcome.kind is Kind.UPLOADED:
                self._uploaded += outcome.size
            if outcome.kind in (Kind.UPLOADED, Kind.PRESENT):
                self.suspects.discard((p.item.bucket, p.item.key))
            self.record([outcome])

    def run(self, files: list[Candidate]) -> None:
        """One chunk of the bucket's files through check, transfer, verify and settle."""
        target = self.target
        files, guarded = writer_guard(files, self.open_files)
        self.record(guarded)
        if not files:
            return
        every = self.config.dry_run or target.keep_existing
        first = {f for f in files if check.needs_check(f, self.suspects, every=every)}
        checked = check.lookup(target, [f for f in files if f in first])
        self._found(checked)
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
            one_by_one = {f for f in pending if target.put_new(f.size)}  # If-None-Match
            self._transfer(pending, single=one_by_one | set(checked.single))

    def _found(self, checked: check.Checked) -> None:
        """What the lookup found: the files S3 holds are settled, and those whose object
        can't be proven by its ETag under --if-exists keep are proven by reading it back."""
        self.record(checked.outcomes)
        self._settle(checked.proven)
        read_backs = self.target.read_backs
        for item, obj, reason in checked.read_back:
            if self.config.dry_run:
                self.record([of_file(Kind.WOULD_READ_BACK, item, reason)])
                continue
            sides = read_backs.sides(item, obj)  # as they are before the read
            if sides is not None and read_backs.known_different(item, sides):
                why = f"{reason}; read back before and found different, both unchanged"
                self.record([of_file(Kind.EXISTS, item, why)])
                continue
            if self.stop.is_set():
                self.record([of_batch(Kind.STOPPED, self.target.bucket, 1)])
                continue
            dest = self.config.state.read_back(self.target.bucket)
            with read_backs.reading:
                proven, outcome = check.read_back(self.target, item, dest)
            settled = proven is not None or (outcome is not None and outcome.kind is Kind.EXISTS)
            if sides is not None and settled:
                read_backs.found(item, sides, different=proven is None)
            self.record([outcome] if outcome is not None else [])
            self._settle([proven] if proven is not None else [])

    def _transfer(self, files: Sequence[Candidate], *, single: set[Candidate]) -> None:
        """Upload, verify and settle: a batch of staged links, then the files that need
        one upload each (unlinkable, opaque ETags, or unprovable from the listing)."""
        target = self.target
        started, before = time.monotonic(), self._uploaded
        staging = self.config.state.staging(target.bucket)
        try:
            pinned = transfer.stage(files, staging)
            if pinned.problem is not None:
                reason = (
                    f"{pinned.problem}; uploading {len(pinned.direct)} files from where they "
                    "are, unpinned (the proof after the upload still decides every delete)"
                )
                self.record([Outcome(Kind.NO_STAGING, target.bucket, reason=reason)])
            self.record(of_file(Kind.UPLOAD_FAILED, item, why) for item, why in pinned.failed)
            staged, copied = pinned.staged, pinned.copied
            loose = [(item, item.path) for item in pinned.direct]
            one_by_one = [_original(pair, copied) for pair in staged + loose if pair[0] in single]
            batches = (
                (staging, [pair for pair in staged if pair[0] not in single]),
                (transfer.bucket_dir(files[0]), [pair for pair in loose if pair[0] not in single]),
            )
            for source, batch in batches:
                if not batch or self.stop.is_set():
                    continue
                if target.missing.error is not None:  # a listing of this scan found none
                    self.record([check.not_tried(target.bucket, len(batch), target.missing.error)])
                    continue
                if target.opaque:  # known now, maybe from this chunk's first batch
                    one_by_one += [_original(pair, copied) for pair in batch]
                    continue
                unprovable = self._batch(source, batch, copied)
                one_by_one += [_original(pair, copied) for pair in unprovable]
            self._singles(one_by_one)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            self.drain.record(self._uploaded - before, time.monotonic() - started)

    def _batch(
        self,
        source: Path,
        staged: list[tuple[Candidate, Path]],
        copied: dict[Path, Identity],
    ) -> list[tuple[Candidate, Path]]:
        """Upload the files in one call (staged links from `source`, or, when `source` is
        the bucket directory, the files themselves), hashing them meanwhile; verify and
        settle. Returns the files a listing can't prove."""
        target = self.target
        bucket_dir = transfer.bucket_dir(staged[0][0])
        pinned = source != bucket_dir
        with ThreadPoolExecutor(1, thread_name_prefix="hash") as hasher:
            paths = [path for _, path in staged]
            known = hasher.submit(transfer.fingerprints, paths, target.multipart, self.stop)
            ran, outcomes = self._journalled(
                [item for item, _ in staged],
                lambda: transfer.upload_batch(target, source, staged, bucket_dir, pinned=pinned),
                lambda done: not done[0] or any(o.kind is Kind.CLI_ERROR for o in done[1]),
            )
            prints = known.result()
        prints = transfer.as_originals(prints, copied)
        self.record(outcomes)
        if not ran:
            return []
        try:
            remote = list_remote(target.cli, target.bucket, [i.key for i, _ in staged])
        except AwsCliError as exc:
            target.missing.seen(exc)
            self.record([check.list_failed(target.bucket, len(staged), exc)])
            return []
        verified = check.verify(target, staged, remote, prints)
        self.record(verified.outcomes)
        self._settle(verified.proven)
        return verified.unprovable

    def _journalled(
        self, items: Sequence[Candidate], call: Callable[[], Done], failed: Callable[[Done], bool]
    ) -> Done:
        """Run an upload call noted in the state directory's journal when it may leave
        multipart uploads (files of multipart size); when it fails or is ended, abort the
        multipart uploads it left (a killed run's are aborted at the next start)."""
        target = self.target
        keys = [item.key for item in items if item.size >= target.multipart.threshold]
        if not keys:
            return call()
        entry = self.config.state.begin_upload(target.bucket, keys)
        started = entry.started if entry is not None else time.time()
        done = call()
        if failed(done):
            left = self.leftovers.after_failure(target.cli, target.bucket, keys, entry, started)
            self.record(left)
        else:
            self.config.state.end_upload(entry)
        return done

    def _singles(self, files: Sequence[tuple[Candidate, Path]]) -> None:
        """The files that go one by one. Put-objects (--if-exists keep) run up to MAX_PUTS at
        a time, each an aws process under its own watchdog and in a stop's reach (the CLI's
        `running`); none starts once the run stops; their answers are proven and settled
        here, in order. The `cp`s, each with its journal entry, go one after another."""
        puts = [pair for pair in files if self.target.put_new(pair[0].size)]
        left = 0  # not started: the run stopped
        if puts:
            with ThreadPoolExecutor(MAX_PUTS, thread_name_prefix="put") as pool:
                for (item, path), sent in zip(puts, pool.map(lambda pair: self._put(*pair), puts)):
                    if sent is None:
                        left += 1
                    else:
                        self._sent(item, path, sent)
        for item, path in files:
            if self.target.put_new(item.size):
                continue
            if self.stop.is_set():
                left += 1
            else:
                self._single(item, path)
        if left:
            self.record([of_batch(Kind.STOPPED, self.target.bucket, left)])

    def _put(self, item: Candidate, path: Path) -> transfer.Sent | None:
        """A put-object of its own (in the pool); None once the run stops: not started."""
        return None if self.stop.is_set() else transfer.upload_single(self.target, item, path)

    def _single(self, item: Candidate, path: Path) -> None:
        """One `cp` that stores the file's SHA-256, noted in the journal, then its proof."""
        sent = self._journalled(
            [item],
            lambda: transfer.upload_single(self.target, item, path),
            lambda done: done.ended is not None,
        )
        self._sent(item, path, sent)

    def _sent(self, item: Candidate, path: Path, sent: transfer.Sent) -> None:
        """Prove and settle what one upload left: by the put-object's own answer, or by
        head-object and the SHA-256 stored (a put-object makes no multipart upload, so it
        needs no journal entry)."""
        if sent.taken:
            self._taken(item)
            return
        if sent.ended is not None or sent.head is None or sent.hashed is None:
            self.record([sent.ended or of_file(Kind.MISSING, item)])
            return
        if sent.md5 is not None:
            by_answer = check.verify_put(item, sent.head, sent.md5, sent.hashed)
            self.record(by_answer.outcomes)
            self._settle(by_answer.proven)
            return
        remote = {item.key: sent.head}
        verified = check.verify(self.target, [(item, path)], remote, {}, sha256_next=False)
        self.record(verified.outcomes)
        # the SHA-256 stored is the one of the file as hashed: a proof of another state of
        # it (changed after the hash, maybe back to the same bytes) proves nothing
        changed = [p for p in verified.proven if p.identity != sent.hashed]
        self.record(of_file(Kind.CHANGED, p.item, HASHED_AGAIN) for p in changed)
        self._settle(p for p in verified.proven if p.identity == sent.hashed)

    def _taken(self, item: Candidate) -> None:
        """S3 refused the upload because another writer created the key since the lookup:
        the file is proven against what that writer stored, as before an upload (deleted
        when it is the same, else kept), and never uploaded over it."""
        checked = check.lookup(self.target, [item])
        said = [
            o._replace(reason=f"{TAKEN}; {o.reason}") if o.kind is Kind.EXISTS else o
            for o in checked.outcomes
        ]
        self._found(checked._replace(outcomes=said))
        if checked.upload:  # and gone again since
            self.record([of_file(Kind.CHANGED, item, f"{TAKEN}, then removed it")])
