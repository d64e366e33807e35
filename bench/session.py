"""What every case shares: its settings, fresh trees and buckets, contenders run interleaved
(A B A B ...), every run verified, and the rows, notes and raw figures of the report."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from contenders import Tools, UploaderRun
from host import BenchError
from report import Row, breakdown, median_run
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
        return write_tree(fresh_dir(self.root), files)

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
        load = os.getloadavg()[0]
        for run in range(self.settings.repeat):
            for name, contender in contenders.items():
                result = contender(run)
                results[name].append(result)
                seconds = result.seconds if isinstance(result, UploaderRun) else result
                self.progress(f"{case}: run {run + 1}/{self.settings.repeat} {name} {seconds:.2f}s")
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


def _raw(result: object) -> object:
    if isinstance(result, UploaderRun):
        return {
            "seconds": result.seconds,
            "scan_seconds": result.scan_seconds,
            "self_rss_kib": result.self_rss_kib,
            "children_rss_kib": result.children_rss_kib,
            "startup_seconds": result.startup_seconds,
            "calls": [[c.kind, round(c.seconds, 4), c.exit_code] for c in result.calls],
        }
    return result
