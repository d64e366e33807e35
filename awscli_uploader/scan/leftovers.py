"""Multipart uploads a run may have left in S3: after an upload call that failed or was
ended, its multipart uploads are aborted at once; what could not be aborted then (an
outage), and what a killed run left in its journal, is tried again at each scan.

The journal in the state directory (`StateDir.begin_upload`) is what a killed run leaves;
this is the one place that clears it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..local.state import Journal, StateDir
from ..model import Kind, Outcome, of_batch
from ..s3 import multipart
from ..s3.awscli import AwsCli


@dataclass
class Leftovers:
    state: StateDir
    pending: list[Journal] = field(default_factory=list)
    said: set[str] = field(default_factory=set)  # buckets told once that it can't be done
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, entries: Iterable[Journal]) -> None:
        with self._lock:
            self.pending.extend(entries)

    def after_failure(
        self, cli: AwsCli, bucket: str, keys: Sequence[str], entry: Journal | None, since: float
    ) -> list[Outcome]:
        """An upload call of `keys` failed or was ended: abort what it left now, or keep its
        journal entry (with its end) for the next scans."""
        cleanup = multipart.abort_ours(cli, bucket, keys, since, time.time())
        if cleanup.final:
            self.state.end_upload(entry)
        elif entry is not None:
            self.add([self.state.upload_ended(entry)])
        return self._outcomes(bucket, cleanup)

    def retry(self, cli: AwsCli, stop: threading.Event) -> list[Outcome]:
        """One attempt for each bucket with uploads left: one listing per prefix for all
        its entries, between the earliest start and the latest end (none: up to now)."""
        with self._lock:
            pending, self.pending = self.pending, []
        by_bucket: dict[str, list[Journal]] = {}
        for entry in pending:
            by_bucket.setdefault(entry.bucket, []).append(entry)
        outcomes: list[Outcome] = []
        for bucket, entries in sorted(by_bucket.items()):
            if stop.is_set():
                self.add(entries)
                continue
            keys = sorted({key for entry in entries for key in entry.keys})
            since = min(entry.started for entry in entries)
            ends = [entry.ended for entry in entries]
            until = None if None in ends else max(e for e in ends if e is not None)
            cleanup = multipart.abort_ours(cli, bucket, keys, since, until)
            if cleanup.final:
                for entry in entries:
                    self.state.end_upload(entry)
            else:
                self.add(entries)
            outcomes += self._outcomes(bucket, cleanup)
        return outcomes

    def _outcomes(self, bucket: str, cleanup: multipart.Cleanup) -> list[Outcome]:
        """How many it aborted, or why it could not (a store or credentials that can't:
        said once per bucket)."""
        found: list[Outcome] = []
        if cleanup.aborted:
            keys = ", ".join(sorted({u.key for u in cleanup.aborted}))
            found.append(of_batch(Kind.ABORTED, bucket, len(cleanup.aborted), keys))
        if cleanup.problem is not None:
            once = cleanup.unsupported or cleanup.denied
            with self._lock:
                quiet = once and bucket in self.said
                if once:
                    self.said.add(bucket)
            if not quiet:
                found.append(of_batch(Kind.NOT_ABORTED, bucket, 0, cleanup.problem))
        return found
