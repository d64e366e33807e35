"""After every scan: the last-scan record for `status`, and the metrics file when asked for.

A failure to write either is logged and the daemon goes on; a dry run writes
neither.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Config
from ..local.atomicfile import write_atomic
from ..model import Candidate
from ..s3.health import CredentialWatch
from ..scan.record import ScanObserver, Stats
from . import metrics, status
from .backlog import backlog


@dataclass
class Fanout(ScanObserver):
    """Tells every observer, in order."""

    observers: Sequence[ScanObserver]

    def batch(self, by_bucket: Mapping[str, Sequence[Candidate]]) -> None:
        for observer in self.observers:
            observer.batch(by_bucket)

    def bucket_started(self, bucket: str, files: Sequence[Candidate]) -> None:
        for observer in self.observers:
            observer.bucket_started(bucket, files)

    def bucket_done(self, bucket: str, files: Sequence[Candidate]) -> None:
        for observer in self.observers:
            observer.bucket_done(bucket, files)

    def scanned(self, stats: Stats) -> None:
        for observer in self.observers:
            observer.scanned(stats)


@dataclass
class Reporter(ScanObserver):
    config: Config
    log: logging.Logger
    watch: CredentialWatch
    totals: metrics.Totals = field(default_factory=metrics.Totals)

    def scanned(self, stats: Stats) -> None:
        if self.config.dry_run:
            return
        self.totals.add(stats)
        record = status.last_scan_record(
            stats, self.config, credentials_valid=self.watch.valid, pid=os.getpid()
        )
        path = self.config.state.last_scan
        try:
            write_atomic(path, json.dumps(record, indent=1) + "\n", mode=0o600)
        except OSError as exc:
            self.log.error("cannot write the status file %s: %s", path, exc.strerror or exc)
        if self.config.metrics_file is not None:
            self._write_metrics(stats, self.config.metrics_file)

    def _write_metrics(self, stats: Stats, path: Path) -> None:
        now_ns = time.time_ns()
        waiting = backlog(self.config, now_ns=now_ns)
        text = metrics.render(
            self.totals, stats, waiting, credentials_valid=self.watch.valid, now_ns=now_ns
        )
        try:
            write_atomic(path, text)
        except OSError as exc:
            self.log.error("cannot write the metrics file %s: %s", path, exc.strerror or exc)
