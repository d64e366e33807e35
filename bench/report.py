"""Pure pieces of the report: targets, verdicts, the uploader's time split, the table."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from contenders import UploaderRun

GIB = 1024**3


@dataclass(frozen=True)
class Target:
    """`value <= limit` (at_most) or `value >= limit`, shown as e.g. '<= 1.0x'."""

    limit: float
    at_most: bool
    unit: str = "x"

    def __str__(self) -> str:
        if self.at_most and self.limit == 0:
            return "0"
        limit = f"{self.limit:.1f}" if self.unit == "x" and self.limit < 10 else f"{self.limit:g}"
        return f"{'<=' if self.at_most else '>='} {limit}{self.unit}"

    def verdict(self, value: float) -> str:
        ok = value <= self.limit if self.at_most else value >= self.limit
        return "PASS" if ok else "MISS"


@dataclass(frozen=True)
class Row:
    case: str
    contender: str
    seconds: float | None = None  # median wall time
    measure: str = ""  # ratio vs the peer, or the case's own figure
    target: Target | None = None
    value: float | None = None  # what the target is checked against

    @property
    def result(self) -> str:
        if self.target is None or self.value is None:
            return ""
        return self.target.verdict(self.value)


@dataclass(frozen=True)
class Cost:
    """What one contender run cost the host: CPU seconds (user + system) of every process it
    started, aws children included, and the files and bytes it moved; for the uploader, its
    own share of the CPU and its peak RSS (its largest aws process apart)."""

    seconds: float  # wall time, as the case reports it
    cpu: float
    files: int
    bytes: int
    own_cpu: float | None = None
    rss_kib: int | None = None
    kids_rss_kib: int | None = None

    @property
    def per_1000_files(self) -> float | None:
        return self.cpu / self.files * 1000 if self.files else None

    @property
    def per_gib(self) -> float | None:
        return self.cpu / self.bytes * GIB if self.bytes else None


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def median_run(runs: Sequence[UploaderRun]) -> UploaderRun:
    """The run whose wall time is the median (the lower middle one for an even count)."""
    ordered = sorted(runs, key=lambda r: r.seconds)
    return ordered[(len(ordered) - 1) // 2]


def breakdown(run: UploaderRun) -> str:
    """Where one uploader run's wall time went: start-up, each kind of aws process (with
    the CPU those processes took), the rest; and the CPU of the uploader's own process."""
    kinds: dict[str, list[tuple[float, float]]] = {}
    for call in run.calls:
        kinds.setdefault(call.kind, []).append((call.seconds, call.cpu))
    parts = [f"python start-up {run.startup_seconds:.2f}s"]
    parts += [
        f"{kind} {len(t)}x {sum(s for s, _ in t):.2f}s (CPU {sum(c for _, c in t):.2f}s)"
        for kind, t in kinds.items()
    ]
    rest = run.seconds - run.startup_seconds - covered([(c.start, c.end) for c in run.calls])
    parts.append(f"in-process with no aws process running {rest:.2f}s")
    return f"{run.seconds:.2f}s = " + ", ".join(parts) + f"; own CPU {run.self_cpu:.2f}s"


def covered(intervals: Sequence[tuple[float, float]]) -> float:
    """Seconds during which at least one interval is open (aws processes may overlap)."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def table(rows: Sequence[Row]) -> str:
    head = ("case", "contender", "median s", "ratio vs peer / figure", "target", "result")
    body = [
        (
            r.case,
            r.contender,
            "" if r.seconds is None else f"{r.seconds:.2f}",
            r.measure,
            "" if r.target is None else str(r.target),
            r.result,
        )
        for r in rows
    ]
    return _columns(head, body)


def _columns(head: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    widths = [max(len(line[i]) for line in (head, *body)) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in body]
    rule = "  ".join("-" * w for w in widths)
    title = "  ".join(cell.ljust(w) for cell, w in zip(head, widths)).rstrip()
    return "\n".join([title, rule, *lines])


def per_file_rows(case: str, few: int, up_few: float, many: int, up_many: float) -> list[Row]:
    """The uploader's time per file at `few` and at `many` files, the latter against the
    target of at most 1.2x the former."""
    per_file = (up_many / many) / (up_few / few)
    return [
        Row(case, f"uploader --once, {few:,} files", up_few, f"{up_few / few * 1000:.2f} ms/file"),
        Row(
            case,
            f"uploader --once, {many:,} files",
            up_many,
            f"{up_many / many * 1000:.2f} ms/file = {per_file:.2f}x per file at {few:,}",
            Target(1.2, True),
            per_file,
        ),
    ]


def s5cmd_row(case: str, seconds: float, uploader: float) -> Row:
    """s5cmd's row: no target (issue 11), its time and how far the uploader is from it."""
    return Row(
        case,
        's5cmd run: one mv "DIR/*" line per bucket',
        seconds,
        f"uploader {uploader / seconds:.2f}x this",
    )


def _median_of(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return median(present) if present else None


def cost_line(costs: Sequence[Cost]) -> tuple[str, ...]:
    """The host-cost cells of one contender's runs (medians): wall s, CPU s, CPU s per 1,000
    files, CPU s per GiB, peak RSS (the largest of the runs)."""
    cpu = median([c.cpu for c in costs])
    own = _median_of([c.own_cpu for c in costs])
    per_files, per_gib = (
        _median_of([c.per_1000_files for c in costs]),
        _median_of([c.per_gib for c in costs]),
    )
    rss = [c for c in costs if c.rss_kib is not None]
    peak = ""
    if rss:
        top, kid = max(c.rss_kib or 0 for c in rss), max(c.kids_rss_kib or 0 for c in rss)
        peak = f"{top / 1024:.0f} MB (largest aws {kid / 1024:.0f} MB)"
    return (
        f"{median([c.seconds for c in costs]):.2f}",
        f"{cpu:.2f}" + ("" if own is None else f" (own {own:.2f}, aws {cpu - own:.2f})"),
        "" if per_files is None else f"{per_files:.2f}",
        "" if per_gib is None else f"{per_gib:.2f}",
        peak,
    )


def cost_table(costs: dict[str, dict[str, list[Cost]]]) -> str:
    """Per case and contender: the median wall time beside the CPU it cost and the peak RSS."""
    head = ("case", "contender", "wall s", "CPU s", "CPU s/1,000 files", "CPU s/GiB", "peak RSS")
    body = [
        (case, name, *cost_line(runs))
        for case, contenders in costs.items()
        for name, runs in contenders.items()
        if runs
    ]
    return _columns(head, body)
