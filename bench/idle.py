"""The idle case of issue 21: what a tree of files none of which is ready costs the host.

It runs issue 5's idle case (the first scan: `--once` on 100,000 files just written,
`-s 3600`), then, on the same tree, the real daemon (`-i 1`) for a few scans, and `find
ROOT -type f` as the floor: the daemon's scan after the first against `find`'s time, and
the daemon's CPU (its own and its aws children's, from /proc) per scan, scaled to an idle
hour at the default interval of 60 s.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import cases
from host import REGION, BenchError
from report import Row, Target, median
from session import Bench

from awscli_uploader.local.state import StateDir
from awscli_uploader.local.walk import QUIET_MAX_NS

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


class Measured(NamedTuple):
    scans: list[float]  # the quiet scans' times
    cpu: float  # CPU seconds a quiet scan, aws children included
    listing: float  # CPU seconds of the scan that listed the tree, held files unstat'ed
    started: bool  # whether `listing` includes the daemon's start-up (its first scan)


def daemon_scans(b: Bench, root: Path, *options: str, listing: int) -> Measured:
    """The real daemon run with `options`: its quiet scans' times and CPU, and the CPU of
    its scan number `listing` (from 1; the first's includes the start-up), the one that
    listed the tree without a stat of what it held: what a quiet directory's note costs
    again when it runs out."""
    args = [sys.executable, "-m", "awscli_uploader", "-d", str(root), "-i", "1", *options]
    args += ["--endpoint-url", b.tools.moto.url, "-r", REGION, "--aws-cli", b.tools.cli]
    proc = subprocess.Popen(
        args, env=b.tools.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 120 + 10 * SCANS
        record = scan_record(root) or {}  # the last run's, before this daemon's first
        used = [0.0]  # CPU after each of the daemon's first scans (it sleeps in between)
        for _ in range(2):  # it noted the directories in one of them
            record = next_scan(root, record.get("started"), deadline)
            used.append(cpu_seconds(proc.pid))
        cpu, seconds = used[-1], []
        for _ in range(SCANS):
            record = next_scan(root, record.get("started"), deadline)
            seconds.append(float(record["seconds"]))  # type: ignore[arg-type]
        listed = used[listing] - used[listing - 1]
        return Measured(seconds, (cpu_seconds(proc.pid) - cpu) / SCANS, listed, listing == 1)
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
    # the daemon's first scan stats each file and defers it, its second lists them
    daemon_rows(b, case, floor, "daemon", daemon_scans(b, root, "-s", "3600", listing=2))
    # the same files excluded by name, at the default stability: ready but never taken;
    # the daemon's first scan lists them
    excluded = daemon_scans(b, root, "-s", "2", "--exclude", "*.bin", listing=1)
    daemon_rows(b, case, floor, "daemon, every file excluded (-s 2):", excluded)
    left = sum(1 for _ in root.rglob("*.bin"))
    if left != n:
        b.problems.append(f"idle: {left} of {n} files left after the daemon's scans")


def daemon_rows(b: Bench, case: str, floor: float, who: str, measured: Measured) -> None:
    """A daemon run's rows: its scan after the first against `find`, its CPU an hour: the
    quiet scans', and the listings when the notes run out (QUIET_MAX_NS)."""
    scans, cpu, listing, started = measured
    scan = median(scans)
    b.rows.append(
        Row(
            case,
            f"{who} scan after the first (median)",
            scan,
            f"{scan:.3f} s = {scan / floor:.1f}x find",
            Target(3.0, True),
            scan / floor,
        )
    )
    # every note runs out within QUIET_MAX_NS: at most one listing in so many scans
    period = math.ceil(QUIET_MAX_NS / 1e9 / DEFAULT_INTERVAL)
    scans_an_hour = 3600 / DEFAULT_INTERVAL
    listings = scans_an_hour / period
    quiet = scans_an_hour - listings
    hour = quiet * cpu + listings * listing
    bound = " (the first scan's, start-up included: an upper bound)" if started else ""
    b.rows.append(
        Row(
            case,
            f"{who} CPU per idle hour at -i 60",
            None,
            f"{hour:.1f} s ({quiet:.0f} scans of {cpu:.3f} s, aws children included, and "
            f"{listings:.0f} listings of {listing:.2f} s{bound} as the notes run out; "
            f"{hour / 36:.2f} % of a core)",
        )
    )


CASES: dict[str, Callable[[Bench], None]] = {"idle": idle}
