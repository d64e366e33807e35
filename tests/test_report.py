"""After every scan: observers told in order, the status record and the metrics file written,
a failure to write logged and survived, a dry run writing nothing."""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from helpers import tally, write
from prometheus_client.parser import text_string_to_metric_families

from awscli_uploader.config import Config
from awscli_uploader.local.state import StateDir
from awscli_uploader.model import Candidate
from awscli_uploader.ops.report import Fanout, Reporter
from awscli_uploader.s3.health import CredentialWatch
from awscli_uploader.scan.record import ScanObserver, Stats

LOG = logging.getLogger("awscli_uploader.test.report")


class Recorder(ScanObserver):
    def __init__(self, name: str, calls: list[tuple[str, str]]) -> None:
        self.name = name
        self.calls = calls

    def batch(self, by_bucket: Mapping[str, Sequence[Candidate]]) -> None:
        self.calls.append((self.name, f"batch {sorted(by_bucket)}"))

    def bucket_started(self, bucket: str, files: Sequence[Candidate]) -> None:
        self.calls.append((self.name, f"started {bucket} {len(files)}"))

    def bucket_done(self, bucket: str, files: Sequence[Candidate]) -> None:
        self.calls.append((self.name, f"done {bucket} {len(files)}"))

    def scanned(self, stats: Stats) -> None:
        self.calls.append((self.name, f"scanned {stats.uploaded}"))


def test_fanout_tells_every_observer_in_order() -> None:
    calls: list[tuple[str, str]] = []
    fanout = Fanout([Recorder("a", calls), Recorder("b", calls)])
    files = [Candidate(Path("/r/b-1/k"), "b-1", "k", 1, 0)]
    fanout.batch({"b-1": files})
    fanout.bucket_started("b-1", files)
    fanout.bucket_done("b-1", files)
    fanout.scanned(Stats(tally(uploaded=1)))
    assert calls == [
        ("a", "batch ['b-1']"),
        ("b", "batch ['b-1']"),
        ("a", "started b-1 1"),
        ("b", "started b-1 1"),
        ("a", "done b-1 1"),
        ("b", "done b-1 1"),
        ("a", "scanned 1"),
        ("b", "scanned 1"),
    ]


def _stats(uploaded: int, size: int) -> Stats:
    stats = Stats(tally(uploaded=uploaded, uploaded_bytes=size), started=1_800_000_000.0)
    stats.seconds = 0.5
    stats.buckets["b-1"] = tally(uploaded=uploaded, uploaded_bytes=size)
    return stats


def _samples(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(path.read_text())
        for sample in family.samples
    }


def test_status_record_and_metrics_after_each_scan(root: Path, tmp_path: Path) -> None:
    StateDir(root).path.mkdir(mode=0o700)
    write(root / "b-1" / "waiting.txt", b"12345")
    metrics_file = tmp_path / "uploader.prom"
    watch = CredentialWatch()
    watch.record(True)
    reporter = Reporter(Config(root=root, metrics_file=metrics_file), LOG, watch)
    reporter.scanned(_stats(2, 30))
    reporter.scanned(_stats(1, 5))
    record_path = StateDir(root).last_scan
    record = json.loads(record_path.read_text())
    assert (record["pid"], record["mode"], record["uploaded"]) == (os.getpid(), "daemon", 1)
    assert record["credentials_valid"] is True
    assert stat.S_IMODE(record_path.stat().st_mode) == 0o600
    samples = _samples(metrics_file)
    b1 = (("bucket", "b-1"),)
    assert samples["awscli_uploader_uploaded_files_total", b1] == 3  # added up over both scans
    assert samples["awscli_uploader_uploaded_bytes_total", b1] == 35
    assert samples["awscli_uploader_scans_total", ()] == 2
    assert samples["awscli_uploader_backlog_files", b1] == 1  # what is still under the root
    assert samples["awscli_uploader_backlog_bytes", b1] == 5
    assert samples["awscli_uploader_credentials_valid", ()] == 1


def test_no_metrics_file_unless_asked(root: Path, tmp_path: Path) -> None:
    state = StateDir(root)
    state.path.mkdir(mode=0o700)
    Reporter(Config(root=root), LOG, CredentialWatch()).scanned(_stats(1, 1))
    assert list(state.path.iterdir()) == [state.last_scan]
    assert list(tmp_path.glob("*.prom")) == []


def test_a_dry_run_writes_nothing(root: Path, tmp_path: Path) -> None:
    StateDir(root).path.mkdir(mode=0o700)
    metrics_file = tmp_path / "uploader.prom"
    config = Config(root=root, dry_run=True, metrics_file=metrics_file)
    Reporter(config, LOG, CredentialWatch()).scanned(_stats(1, 1))
    assert list(StateDir(root).path.iterdir()) == []
    assert not metrics_file.exists()


def test_a_failed_write_is_logged_and_survived(
    root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # no state directory, and a metrics file in a directory that is gone
    config = Config(root=root, metrics_file=tmp_path / "gone" / "uploader.prom")
    reporter = Reporter(config, LOG, CredentialWatch())
    with caplog.at_level(logging.ERROR):
        reporter.scanned(_stats(1, 1))
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2
    assert errors[0].startswith("cannot write the status file ")
    assert errors[1].startswith("cannot write the metrics file ")
    assert reporter.totals.scans == 1  # counted all the same, for the next write
