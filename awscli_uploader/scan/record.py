"""The one place where outcomes become counts, log lines and the scan's summary, and the
interface through which a scan tells the outside (progress, status, metrics)."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..model import Candidate, Count, Kind, Outcome

MAX_UNSTABLE_LINES = 20  # per scan; the rest are summed up in one line
BUCKET_COUNTS = (Count.UPLOADED, Count.PRESENT, Count.FAILED)  # also counted per bucket


@dataclass
class Tally:
    """Files per counter, and the bytes of the uploaded ones."""

    files: Counter[Count] = field(default_factory=Counter)
    uploaded_bytes: int = 0

    def __getitem__(self, count: Count) -> int:
        return self.files[count]

    @property
    def uploaded(self) -> int:
        return self.files[Count.UPLOADED]

    @property
    def present(self) -> int:
        return self.files[Count.PRESENT]

    @property
    def failed(self) -> int:
        return self.files[Count.FAILED]

    def add(self, outcome: Outcome) -> None:
        if outcome.kind.count is not None:
            self.files[outcome.kind.count] += outcome.files
        if outcome.kind is Kind.UPLOADED:
            self.uploaded_bytes += outcome.size

    def merge(self, other: Tally) -> None:
        self.files.update(other.files)
        self.uploaded_bytes += other.uploaded_bytes

    def record(self, counts: Iterable[Count]) -> dict[str, int]:
        """These counts by name, with the uploaded bytes after `uploaded`."""
        found: dict[str, int] = {}
        for count in counts:
            found[count.value] = self[count]
            if count is Count.UPLOADED:
                found["uploaded_bytes"] = self.uploaded_bytes
        return found


@dataclass
class Stats:
    """One scan's counts: the status record, the metrics and the summary line come from here."""

    total: Tally = field(default_factory=Tally)
    buckets: dict[str, Tally] = field(default_factory=dict)  # BUCKET_COUNTS per bucket
    seconds: float = 0.0
    started: float = field(default_factory=time.time)  # wall clock, for status and metrics

    def __getitem__(self, count: Count) -> int:
        return self.total[count]

    def tally(self, bucket: str) -> Tally:
        return self.buckets.setdefault(bucket, Tally())

    def add(self, outcome: Outcome) -> None:
        self.total.add(outcome)
        if outcome.kind.count in BUCKET_COUNTS:
            self.tally(outcome.bucket).add(outcome)

    @property
    def uploaded(self) -> int:
        return self[Count.UPLOADED]

    @property
    def uploaded_bytes(self) -> int:
        return self.total.uploaded_bytes

    @property
    def present(self) -> int:
        return self[Count.PRESENT]

    @property
    def unstable(self) -> int:
        return self[Count.UNSTABLE]

    @property
    def ignored(self) -> int:
        return self[Count.IGNORED]

    @property
    def failed(self) -> int:
        return self[Count.FAILED]

    @property
    def excluded(self) -> int:
        return self[Count.EXCLUDED]

    @property
    def eventful(self) -> bool:
        """Whether the scan uploaded, deleted or failed anything."""
        return bool(self.uploaded or self.present or self.failed)

    def record(self) -> dict[str, Any]:
        """The counts as plain data: the status record's and the benchmark's."""
        return {
            **self.total.record(Count),
            "buckets": {b: t.record(BUCKET_COUNTS) for b, t in sorted(self.buckets.items())},
        }

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
class Recorder:
    """Counts and logs one scan's outcomes; thread-safe (buckets run in parallel)."""

    log: logging.Logger
    stats: Stats = field(default_factory=Stats)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _quiet_unstable: int = 0

    def __call__(self, outcomes: Iterable[Outcome]) -> None:
        for outcome in outcomes:
            with self._lock:
                shown = self._count(outcome)
            if shown and self.log.isEnabledFor(outcome.kind.level):
                self.log.log(outcome.kind.level, "%s", outcome.message(), extra=outcome.fields())

    def _count(self, outcome: Outcome) -> bool:
        """Add the outcome to the counts; whether its line is shown."""
        self.stats.add(outcome)
        if outcome.kind is Kind.UNSTABLE and self.stats[Count.UNSTABLE] > MAX_UNSTABLE_LINES:
            self._quiet_unstable += outcome.files
            return False
        return True

    def planned(self) -> None:
        """The plan is complete: sum up the unstable files not shown one by one."""
        if self._quiet_unstable:
            self.log.warning("%d more files still being written; waiting", self._quiet_unstable)

    def finished(self, seconds: float, *, heartbeat: bool = False) -> Stats:
        """The scan is over: its summary line, at INFO when it uploaded, deleted or failed
        something (or as a heartbeat), else at DEBUG: an idle daemon stays quiet."""
        self.stats.seconds = seconds
        loud = self.stats.eventful or heartbeat
        self.log.log(logging.INFO if loud else logging.DEBUG, "%s", self.stats.summary())
        return self.stats
