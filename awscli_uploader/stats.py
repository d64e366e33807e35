"""A scan's counts, and the observer interface through which a scan tells the outside."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .scanner import Candidate


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

    def tally(self, bucket: str) -> BucketTally:
        return self.buckets.setdefault(bucket, BucketTally())

    @property
    def eventful(self) -> bool:
        """Whether the scan uploaded, deleted or failed anything."""
        return bool(self.uploaded or self.present or self.failed)

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
