"""The idle case of issue 21: what a tree of files none of which is ready costs the host.

It runs issue 5's idle case (the first scan: `--once` on 100,000 files just written,
`-s 3600`), then, on the same tree, the real daemon (`-i 1`) for a few scans, and `find
ROOT -type f` as the floor: the daemon's scan after the first against `find`'s time, and
the daemon's CPU (its own and its aws children's, from /proc) per scan, scaled to an idle
hour at the default interval of 60 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cases
from host import REGION, BenchError
from report import Row, Target, median
from session import Bench

from awscli_uploader.local.state import StateDir

SCANS = 5  # scans of the running daemon measured, after its first
DEFAULT_INTERVAL = 60.0
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """user + system CPU of a process and its waited-for children (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / TICK


def scan_record(root: Path) -> dict[str, object] | None:
    try:
        data = json.loads(StateDir(root).last_scan.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def next_scan(root: Path, after: object, deadline: float) -> dict[str, object]:
    """The daemon's next last-scan record after the one that started at `after`."""
    while time.monotonic() < deadline:
        record = scan_record(root)
        if record is not None and record.get("started") != after:
            return record
        time.sleep(0.05)
    raise BenchError(f"idle: the daemon wrote no new scan record in {root}")


def find_seconds(root: Path) -> float:
    """`find ROOT -type f`'s wall time, the best of three (a warm cache, like the scan's)."""
    times = []
    for _ in range(3):
        started = time.monotonic()
        subprocess.run(["find", str(root), "-type", "f"], stdout=subprocess.DEVNULL, check=True)
        times.append(time.monotonic() - started)
    return min(times)


def daemon_scans(b: Bench, root: Path, *options: str) -> tuple[list[float], float]:
    """The scan times after the first, and the CPU seconds per scan, of the real daemon
    run with `options`."""
    args = [sys.executable, "-m", "awscli_uploader", "-d", str(root), "-i", "1", *options]
    args += ["--endpoint-url", b.tools.moto.url, "-r", REGION, "--aws-cli", b.tools.cli]
    proc = subprocess.Popen(
        args, env=b.tools.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 120 + 10 * SCANS
        before = scan_record(root) or {}  # the --once run's
        record = next_scan(root, before.get("started"), deadline)  # the daemon's first
        record = next_scan(root, record.get("started"), deadline)  # the first deferred scan
        cpu, seconds = cpu_seconds(proc.pid), []
        for _ in range(SCANS):
            record = next_scan(root, record.get("started"), deadline)
            seconds.append(float(record["seconds"]))  # type: ignore[arg-type]
        return seconds, (cpu_seconds(proc.pid) - cpu) / SCANS
    finally:
        proc.terminate()
        proc.wait(30)


def idle(b: Bench) -> None:
    cases.idle(b)  # its tree stays: none of its files is ready
    root = b.root
    n = b.settings.idle
    floor = find_seconds(root)
    case = f"idle ({n:,} files, none ready)"
    b.rows.append(Row(case, "find ROOT -type f (the floor)", floor, f"{floor:.3f} s"))
    daemon_rows(b, case, floor, "", daemon_scans(b, root, "-s", "3600"))
    # the same files excluded by name, at the default stability: ready but never taken
    excluded = daemon_scans(b, root, "-s", "2", "--exclude", "*.bin")
    daemon_rows(b, case, floor, ", every file excluded (-s 2)", excluded)
    left = sum(1 for _ in root.rglob("*.bin"))
    if left != n:
        b.problems.append(f"idle: {left} of {n} files left after the daemon's scans")


def daemon_rows(
    b: Bench, case: str, floor: float, what: str, measured: tuple[list[float], float]
) -> None:
    """A daemon run's rows: its scan after the first against `find`, its CPU an hour."""
    scans, cpu = measured
    scan = median(scans)
    b.rows.append(
        Row(
            case,
            f"daemon scan after the first (median){what}",
            scan,
            f"{scan:.3f} s = {scan / floor:.1f}x find",
            Target(3.0, True),
            scan / floor,
        )
    )
    hour = cpu * 3600 / DEFAULT_INTERVAL
    b.rows.append(
        Row(
            case,
            f"daemon CPU per idle hour at -i 60{what}",
            None,
            f"{hour:.1f} s ({cpu:.3f} s a scan, aws children included; "
            f"{hour / 36:.2f} % of a core)",
        )
    )


CASES: dict[str, Callable[[Bench], None]] = {"idle": idle}
