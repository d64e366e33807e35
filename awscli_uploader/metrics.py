"""`--metrics-file`: Prometheus text-format metrics for node_exporter's textfile collector.

Counters (`_total`) add up over the daemon's life and start again at a
restart, which Prometheus' rate() handles. Gauges describe the last scan and
what it left behind. The text is rendered by a pure function and written
atomically after every scan.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from .backlog import Backlog
from .stats import BucketTally, Stats

PREFIX = "awscli_uploader"

_COUNTERS = (
    ("uploaded_files_total", "uploaded", "Files uploaded, verified in S3 and deleted locally."),
    ("uploaded_bytes_total", "uploaded_bytes", "Bytes of the files counted as uploaded."),
    (
        "present_files_total",
        "present",
        "Files already in S3 with the same content, deleted locally without an upload.",
    ),
    (
        "failed_files_total",
        "failed",
        "File failures (a file that fails in several scans counts in each); it stays local.",
    ),
)


@dataclass
class Totals:
    """The counters, per bucket, since the process started."""

    buckets: dict[str, BucketTally] = field(default_factory=dict)
    scans: int = 0

    def add(self, stats: Stats) -> None:
        self.scans += 1
        for bucket, tally in stats.buckets.items():
            total = self.buckets.setdefault(bucket, BucketTally())
            total.uploaded += tally.uploaded
            total.uploaded_bytes += tally.uploaded_bytes
            total.present += tally.present
            total.failed += tally.failed


def escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else repr(float(value))


def _family(
    name: str, kind: str, help_text: str, samples: Iterable[tuple[Mapping[str, str], float]]
) -> list[str]:
    lines = [f"# HELP {PREFIX}_{name} {help_text}", f"# TYPE {PREFIX}_{name} {kind}"]
    for labels, value in samples:
        text = ",".join(f'{key}="{escape_label(val)}"' for key, val in labels.items())
        series = f"{PREFIX}_{name}{{{text}}}" if text else f"{PREFIX}_{name}"
        lines.append(f"{series} {_number(value)}")
    return lines


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


def render(
    totals: Totals,
    last: Stats,
    backlog: Iterable[Backlog],
    *,
    credentials_valid: bool | None,
    now_ns: int,
) -> str:
    """The whole metrics file, in the Prometheus text exposition format."""
    waiting = merge_backlog(backlog)
    buckets = sorted(set(totals.buckets) | set(waiting))
    lines: list[str] = []
    for name, attribute, help_text in _COUNTERS:
        samples = [
            ({"bucket": b}, getattr(totals.buckets.get(b, BucketTally()), attribute))
            for b in buckets
        ]
        lines += _family(name, "counter", help_text, samples)
    lines += _family("scans_total", "counter", "Scans of the root.", [({}, totals.scans)])
    empty = Backlog("", "")
    gauges: tuple[tuple[str, str, Callable[[Backlog], float]], ...] = (
        ("backlog_files", "Files still local after the last scan.", lambda w: w.files),
        ("backlog_bytes", "Bytes of the files still local.", lambda w: w.bytes),
        (
            "backlog_unstable_files",
            "Files still local that were written too recently to upload.",
            lambda w: w.unstable,
        ),
        (
            "backlog_oldest_age_seconds",
            "Age of the oldest file still local (since its last write); 0 when none.",
            lambda w: round(w.oldest_age(now_ns), 3),
        ),
    )
    for name, help_text, value in gauges:
        samples = [({"bucket": b}, value(waiting.get(b, empty))) for b in buckets]
        lines += _family(name, "gauge", help_text, samples)
    lines += _family(
        "last_scan_start_time_seconds",
        "gauge",
        "When the last scan started, in seconds since the epoch.",
        [({}, round(last.started, 3))],
    )
    lines += _family(
        "last_scan_duration_seconds",
        "gauge",
        "How long the last scan took.",
        [({}, round(last.seconds, 3))],
    )
    lines += _family(
        "credentials_valid",
        "gauge",
        "1 when the last aws call that needed credentials succeeded, 0 when one failed "
        "for credentials or none has succeeded yet.",
        [({}, 1 if credentials_valid else 0)],
    )
    return "\n".join(lines) + "\n"
