"""`--metrics-file`: Prometheus metrics for node_exporter's textfile collector.

Counters (`_total`) add up over the daemon's life and start again at a
restart, which Prometheus' rate() handles. Gauges describe the last scan and
what it left behind. prometheus_client renders the text format; the file is
written atomically by `write_atomic`, not by `write_to_textfile`, which leaves
the file's mode to the umask (a unit's `UMask=0077` would hide it from
node_exporter) and does not fsync.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..model import Count
from ..scan.record import Stats, Tally
from .backlog import Backlog

if TYPE_CHECKING:
    from prometheus_client.core import Metric

PREFIX = "awscli_uploader"

_COUNTERS: tuple[tuple[str, Callable[[Tally], int], str], ...] = (
    (
        "uploaded_files_total",
        lambda t: t[Count.UPLOADED],
        "Files uploaded, verified in S3 and deleted locally.",
    ),
    ("uploaded_bytes_total", lambda t: t.uploaded_bytes, "Bytes of the files counted as uploaded."),
    (
        "present_files_total",
        lambda t: t[Count.PRESENT],
        "Files already in S3 with the same content, deleted locally without an upload.",
    ),
    (
        "failed_files_total",
        lambda t: t[Count.FAILED],
        "File failures (a file that fails in several scans counts in each); it stays local.",
    ),
)
_GAUGES: tuple[tuple[str, str, Callable[[Backlog, int], float]], ...] = (
    ("backlog_files", "Files still local after the last scan.", lambda w, _: w.files),
    ("backlog_bytes", "Bytes of the files still local.", lambda w, _: w.bytes),
    (
        "backlog_unstable_files",
        "Files still local that were written too recently to upload.",
        lambda w, _: w.unstable,
    ),
    (
        "backlog_oldest_age_seconds",
        "Age of the oldest file still local (since its last write); 0 when none.",
        lambda w, now_ns: round(w.oldest_age(now_ns), 3),
    ),
)


@dataclass
class Totals:
    """The counters, per bucket, since the process started."""

    buckets: dict[str, Tally] = field(default_factory=dict)
    scans: int = 0

    def add(self, stats: Stats) -> None:
        self.scans += 1
        for bucket, tally in stats.buckets.items():
            self.buckets.setdefault(bucket, Tally()).merge(tally)


def merge_backlog(entries: Iterable[Backlog]) -> dict[str, Backlog]:
    """Backlog by bucket label (two directories may count against one bucket name)."""
    merged: dict[str, Backlog] = {}
    for entry in entries:
        into = merged.setdefault(entry.bucket, Backlog(entry.directory, entry.bucket))
        into.files += entry.files
        into.bytes += entry.bytes
        into.unstable += entry.unstable
        if entry.oldest_mtime_ns is not None and (
            into.oldest_mtime_ns is None or entry.oldest_mtime_ns < into.oldest_mtime_ns
        ):
            into.oldest_mtime_ns = entry.oldest_mtime_ns
    return merged


@dataclass(eq=False)  # a collector is registered by identity
class _Snapshot:
    """The metrics of one moment, as a prometheus_client collector."""

    totals: Totals
    last: Stats
    backlog: dict[str, Backlog]
    credentials_valid: bool | None
    now_ns: int

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        buckets = sorted(set(self.totals.buckets) | set(self.backlog))
        for name, value, help_text in _COUNTERS:
            counter = CounterMetricFamily(f"{PREFIX}_{name}", help_text, labels=["bucket"])
            for b in buckets:
                counter.add_metric([b], value(self.totals.buckets.get(b, Tally())))
            yield counter
        yield CounterMetricFamily(f"{PREFIX}_scans_total", "Scans of the root.", self.totals.scans)
        empty = Backlog("", "")
        for name, help_text, gauge_value in _GAUGES:
            gauge = GaugeMetricFamily(f"{PREFIX}_{name}", help_text, labels=["bucket"])
            for b in buckets:
                gauge.add_metric([b], gauge_value(self.backlog.get(b, empty), self.now_ns))
            yield gauge
        yield GaugeMetricFamily(
            f"{PREFIX}_last_scan_start_time_seconds",
            "When the last scan started, in seconds since the epoch.",
            round(self.last.started, 3),
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_last_scan_duration_seconds",
            "How long the last scan took.",
            round(self.last.seconds, 3),
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_credentials_valid",
            "1 when the last aws call that needed credentials succeeded, 0 when one failed "
            "for credentials or none has succeeded yet.",
            1 if self.credentials_valid else 0,
        )


def render(
    totals: Totals,
    last: Stats,
    backlog: Iterable[Backlog],
    *,
    credentials_valid: bool | None,
    now_ns: int,
) -> str:
    """The whole metrics file, in the Prometheus text exposition format."""
    # here, not at import: only a daemon with --metrics-file pays for it (~60 ms a start)
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    snapshot = _Snapshot(totals, last, merge_backlog(backlog), credentials_valid, now_ns)
    registry.register(snapshot)
    return generate_latest(registry).decode("utf-8")
