"""One scan: plan the root, then each bucket's batch through its phases (bucket.py).

Each phase returns outcomes (model.py); the recorder (record.py) is the one
place that counts and logs them. A local file is deleted only when S3's object
matches it by size and content (proof.py) and the file is still the very file
that was hashed, with no writer (settle.py).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Config
from ..local import cleanup
from ..model import Candidate, Kind, Outcome, SkipKind, Skipped, of_batch, of_skip
from ..s3.awscli import AwsCli
from . import check, plan
from .bucket import BucketRun
from .deadline import DrainRate
from .leftovers import Leftovers
from .record import Recorder, ScanObserver, Stats
from .target import OpaqueBuckets, ReadBacks, Suspects, Target

HEARTBEAT_SECONDS = 600.0  # an idle daemon's summary reaches INFO this often
MAX_PLAN_WAIT = 10.0  # seconds a scan waits for files that are done by mtime, not yet by ctime
PARALLEL_BUCKETS = 4  # buckets handled at once: each mostly one aws process at a time (up
# to 4 for its listings and heads, and for the put-objects of --if-exists keep)
MAX_CHUNK_FILES = 10_000  # a bucket's batch goes through its phases in chunks this big,
MAX_CHUNK_BYTES = 10 * 1024**3  # each verified and settled before the next starts


def chunked(files: list[Candidate], max_files: int, max_bytes: int) -> list[list[Candidate]]:
    """The files in key order, cut into chunks of at most `max_files` files and `max_bytes`
    bytes (a bigger file is a chunk of its own): a failed or timed-out upload costs one
    chunk, and a chunk's keys span a narrow range to list."""
    chunks: list[list[Candidate]] = []
    size = 0
    for item in sorted(files, key=lambda f: f.key):
        if not chunks or len(chunks[-1]) >= max_files or size + item.size > max_bytes:
            chunks.append([])
            size = 0
        chunks[-1].append(item)
        size += item.size
    return chunks


@dataclass
class Uploader:
    config: Config
    cli: AwsCli
    log: logging.Logger
    stop: threading.Event = field(default_factory=threading.Event)
    opaque: OpaqueBuckets = field(init=False)  # buckets whose ETags prove nothing
    read_backs: ReadBacks = field(default_factory=ReadBacks)  # keep: objects found different
    observer: ScanObserver = field(default_factory=ScanObserver)
    open_files: set[Path] = field(default_factory=set)  # reported open for writing
    sightings: plan.Sightings = field(default_factory=plan.Sightings)
    drain: DrainRate = field(default_factory=DrainRate)  # recent uploads' bytes/s
    suspects: Suspects = field(default_factory=Suspects)  # (bucket, key) S3 may hold
    leftovers: Leftovers = field(init=False)  # multipart uploads to abort
    conditional: bool = field(init=False)  # keep's uploads only create (If-None-Match)
    _deadline: float | None = None
    _last_heartbeat: float = float("-inf")  # time.monotonic() by which uploads must be verified

    def __post_init__(self) -> None:
        self.opaque = OpaqueBuckets.load(self.config.state)
        self.leftovers = Leftovers(self.config.state)
        self.conditional = self.keep and self.cli.conditional_put()

    @property
    def keep(self) -> bool:
        """--if-exists keep: never replace an object with other content."""
        return self.config.if_exists == "keep"

    def set_deadline(self, when: float | None) -> None:
        """Uploads from now on must be verified by `when` (time.monotonic())."""
        self._deadline = when

    def suspect(self, keys: Iterable[tuple[str, str]]) -> None:
        """S3 may already hold these (bucket, key): look them up before their upload."""
        self.suspects.update(keys)

    def scan_once(self) -> Stats:
        """Scan the root once and move every ready file; errors are recorded, not raised."""
        started = time.monotonic()
        record = Recorder(self.log)
        if self.leftovers.pending and not self.config.dry_run:
            record(self.leftovers.retry(self.cli, self.stop))
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

    def _plan(self, record: Recorder) -> list[Candidate | Skipped]:
        """The plan; when files wait only on their ctime or on the daemon's own clock
        (an mtime set back, or from another clock), wait that short while and plan again."""
        found = plan.plan(self.config, sightings=self.sightings)
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
        return plan.plan(self.config, sightings=self.sightings)

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
                self.config.multipart,
                keep_existing=self.keep,
                conditional=self.conditional,
                opaque_buckets=self.opaque,
                read_backs=self.read_backs,
                max_concurrency=self.config.max_concurrency,
            )
            run = BucketRun(
                self.config,
                target,
                record,
                self.stop,
                self.open_files,
                self.drain,
                lambda: self._deadline,
                self.suspects,
                self.leftovers,
            )
            chunks = chunked(files, MAX_CHUNK_FILES, MAX_CHUNK_BYTES)
            for number, chunk in enumerate(chunks):
                left = sum(len(c) for c in chunks[number:])
                if self.stop.is_set():
                    record([of_batch(Kind.STOPPED, bucket, left)])
                    break
                if target.missing.error is not None:  # no bucket: no call can succeed
                    record([check.not_tried(bucket, left, target.missing.error)])
                    break
                run.run(chunk)
        finally:
            if self.config.delete_empty_dirs and not self.config.dry_run:
                emptied = {f.path.parent for f in files if not os.path.lexists(f.path)}
                removed = cleanup.remove_emptied_dirs(self.config.root, emptied)
                record(Outcome(Kind.DIR_REMOVED, bucket, path=path) for path in removed)
            self.observer.bucket_done(bucket, files)
