"""The one place where outcomes become counts, log lines and the scan's summary."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from .outcome import Kind, Outcome
from .stats import Stats

MAX_UNSTABLE_LINES = 20  # per scan; the rest are summed up in one line


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
        counter = outcome.kind.counter
        stats = self.stats
        if counter is not None:
            setattr(stats, counter, getattr(stats, counter) + outcome.files)
            if counter in ("uploaded", "present", "failed"):
                tally = stats.tally(outcome.bucket)
                setattr(tally, counter, getattr(tally, counter) + outcome.files)
        if outcome.kind is Kind.UPLOADED:
            stats.uploaded_bytes += outcome.size
            stats.tally(outcome.bucket).uploaded_bytes += outcome.size
        if outcome.kind is Kind.UNSTABLE and stats.unstable > MAX_UNSTABLE_LINES:
            self._quiet_unstable += 1
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
