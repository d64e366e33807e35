"""What every case shares: its settings, fresh trees and buckets, contenders run interleaved
(A B A B ...), every run verified and costed, and the rows, notes and raw figures of the report.

A run's CPU is the growth of this process's RUSAGE_CHILDREN across it: the contender's
processes are reaped by the harness (`contenders.run_timed`, `subprocess.run`), and theirs
(aws processes, the uploader's children) by them, so the whole tree is counted; nothing else
is reaped meanwhile (moto and the link run for the whole benchmark).
"""

from __future__ import annotations

import os
import resource
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from contenders import Tools, UploaderRun
from host import BenchError
from report import Cost, Row, breakdown, median_run
from trees import BUCKETS, FileSpec, Tree, fresh_dir, write_tree
from verify import verify

T = TypeVar("T")


@dataclass(frozen=True)
class Settings:
    repeat: int = 3
    files: int = 1000  # the small case
    sample: int = 20  # files the per-file contender moves
    large: int = 10_000
    crowd: int = 20_000  # unrelated objects in each bucket of the crowded case
    idle: int = 100_000
    big_mib: int = 256
    rclone: bool = True
    s5cmd: bool = True
    history: tuple[int, ...] = (30_000, 100_000)  # objects already under images/
    backlog: int = 200_000
    notlinkable: int = 1000
    buckets: int = 20  # the manybuckets case: bucket directories
    per_bucket: int = 50  # and files in each
    wan_delay_ms: float = 50.0  # the wan link's delay per request
    wan_mbit: float = 100.0  # its cap for the big file (0: none)
    wan_parts: tuple[str, ...] = ("small", "big", "buckets")


@dataclass
class Bench:
    tools: Tools
    settings: Settings
    progress: Callable[[str], None]
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    runs_verified: int = 0
    idle_runs: int = 0  # verified the other way round: nothing moved, every file kept
    objects_verified: int = 0
    raw: dict[str, Any] = field(default_factory=dict)
    costs: dict[str, dict[str, list[Cost]]] = field(default_factory=dict)  # case, contender
    made: list[Tree] = field(default_factory=list)  # trees made since the run began

    @property
    def root(self) -> Path:
        return self.tools.workdir / "root"

    def tree(
        self, files: Sequence[FileSpec], *, buckets: Sequence[str] = BUCKETS, reset: bool = True
    ) -> Tree:
        """A fresh local tree of `files`, and (after a moto reset) empty `buckets`."""
        if reset:
            self.tools.moto.reset()
        self.tools.moto.create_buckets(buckets)
        tree = write_tree(fresh_dir(self.root), files)
        self.made.append(tree)
        return tree

    def verified(self, label: str, tree: Tree, *, local: bool = True, listing: bool = True) -> None:
        problems = verify(self.tools.moto, tree, local=local, listing=listing)
        self.runs_verified += 1
        self.objects_verified += len(tree.files)
        self.problems += [f"{label}: {p}" for p in problems[:10]]
        if len(problems) > 10:
            self.problems.append(f"{label}: {len(problems) - 10} more problems")

    def interleave(
        self, case: str, contenders: dict[str, Callable[[int], T]]
    ) -> dict[str, list[T]]:
        """Run the contenders A B A B ... `repeat` times; each gets the run number."""
        results: dict[str, list[T]] = {name: [] for name in contenders}
        costs: dict[str, list[Cost]] = self.costs.setdefault(case, {})
        load = os.getloadavg()[0]
        for run in range(self.settings.repeat):
            for name, contender in contenders.items():
                self.made.clear()
                before = _cpu()
                result = contender(run)
                cost = _cost(result, _cpu() - before, self.made)
                results[name].append(result)
                costs.setdefault(name, []).append(cost)
                self.progress(
                    f"{case}: run {run + 1}/{self.settings.repeat} {name} {cost.seconds:.2f}s, "
                    f"CPU {cost.cpu:.2f}s"
                )
                load = max(load, os.getloadavg()[0])
        self.notes.append(f"{case}: 1-minute load average up to {load:.1f} during the runs")
        self.raw[case] = {name: [_raw(r) for r in rs] for name, rs in results.items()}
        return results

    def uploaded(
        self, label: str, tree: Tree, *, listing: bool = True, prefix: Sequence[str] = ()
    ) -> UploaderRun:
        run = self.tools.uploader(tree.root, prefix=prefix)
        if run.uploaded != len(tree.files) or run.failed:
            raise BenchError(
                f"{label}: uploader moved {run.uploaded} of {len(tree.files)}, {run.failed} failed"
            )
        self.verified(label, tree, listing=listing)
        return run

    @property
    def with_s5cmd(self) -> bool:
        return self.settings.s5cmd and self.tools.s5cmd is not None

    def s5cmd(self, label: str, tree: Tree, *, listing: bool = True) -> float:
        seconds = self.tools.s5cmd_mv(tree)
        self.verified(label, tree, listing=listing)
        return seconds

    def explain(self, case: str, name: str, runs: Sequence[UploaderRun]) -> None:
        self.notes.append(f"time split: {case}, {name} (median run): {breakdown(median_run(runs))}")


def _cpu() -> float:
    """CPU seconds (user + system) of every process this one has reaped so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _cost(result: object, cpu: float, made: Sequence[Tree]) -> Cost:
    """A run's cost: its CPU and what the trees made for it held (a sampled contender is
    costed on its sample, so its CPU per 1,000 files stands for the whole case)."""
    files, size = sum(len(t.files) for t in made), sum(t.bytes for t in made)
    if isinstance(result, UploaderRun):
        return Cost(
            result.seconds,
            cpu,
            files,
            size,
            own_cpu=result.self_cpu,
            rss_kib=result.self_rss_kib,
            kids_rss_kib=result.children_rss_kib,
        )
    if not isinstance(result, (int, float)):
        raise BenchError(f"a contender returned {result!r}, not its seconds")
    return Cost(float(result), cpu, files, size)


def _raw(result: object) -> object:
    if isinstance(result, UploaderRun):
        return {
            "seconds": result.seconds,
            "scan_seconds": result.scan_seconds,
            "self_rss_kib": result.self_rss_kib,
            "children_rss_kib": result.children_rss_kib,
            "startup_seconds": result.startup_seconds,
            "self_cpu": result.self_cpu,
            "children_cpu": result.children_cpu,
            "calls": [
                [c.kind, round(c.seconds, 4), c.exit_code, round(c.cpu, 2)] for c in result.calls
            ],
        }
    return result
