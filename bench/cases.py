"""The cases of issue 5: each builds its trees, runs its contenders interleaved, checks
every run, and returns table rows.

A run gets a fresh tree (files an hour old) and fresh buckets (a moto reset), except in
the crowded case, whose 20,000 unrelated objects are put once and stay.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from contenders import UploaderRun
from report import Row, Target, median, per_file_rows, s5cmd_row
from session import Bench
from trees import BUCKETS, MIB, SEED, FileSpec, fresh_dir, plan, write_tree
from verify import leftovers


def _seconds(runs: Sequence[UploaderRun]) -> float:
    return median([r.seconds for r in runs])


def small(b: Bench) -> None:
    """1,000 files in 2 buckets: the uploader against `aws s3 mv`, rclone, one process per file."""
    n, s = b.settings.files, b.settings
    step = max(1, n // s.sample)

    def files(run: int) -> list[FileSpec]:
        return plan(n, buckets=BUCKETS, prefix=f"run-{run:03d}/", seed=SEED)

    def uploader(run: int) -> UploaderRun:
        return b.uploaded("small/uploader", b.tree(files(run)))

    def s3_mv(run: int) -> float:
        tree = b.tree(files(run))
        seconds = b.tools.s3_mv(tree)
        b.verified("small/s3 mv", tree)
        return seconds

    def rclone(run: int) -> float:
        tree = b.tree(files(run))
        seconds = b.tools.rclone_move(tree)
        b.verified("small/rclone", tree)
        return seconds

    def per_file(run: int) -> float:
        tree = b.tree(files(run)[::step][: s.sample])
        seconds = b.tools.per_file(tree, tree.files)
        b.verified("small/per-file", tree)
        return seconds / len(tree.files) * n

    contenders: dict[str, Callable[[int], Any]] = {"uploader": uploader, "s3 mv": s3_mv}
    if s.rclone and b.tools.rclone:
        contenders["rclone"] = rclone
    if b.with_s5cmd:
        contenders["s5cmd"] = lambda run: b.s5cmd("small/s5cmd", b.tree(files(run)))
    contenders["per-file"] = per_file
    results = b.interleave("small", contenders)
    up, mv = _seconds(results["uploader"]), median(results["s3 mv"])
    case = f"small ({n:,} files)"
    b.rows.append(
        Row(case, "uploader --once", up, f"{up / mv:.2f}x s3 mv", Target(1.0, True), up / mv)
    )
    b.rows.append(Row(case, "aws s3 mv --recursive, per bucket in turn", mv))
    if "rclone" in results:
        rc = median(results["rclone"])
        b.rows.append(
            Row(case, "rclone move --min-age 2s, per bucket", rc, f"{rc / up:.2f}x uploader")
        )
    if "s5cmd" in results:
        b.rows.append(s5cmd_row(case, median(results["s5cmd"]), up))
    pf = median(results["per-file"])
    sampled = len(files(0)[::step][: s.sample])
    b.rows.append(
        Row(
            case,
            f"per file: head-object + cp ({sampled} sampled, x{n / sampled:g})",
            pf,
            f"{pf / up:.1f}x uploader",
            Target(50, False),
            pf / up,
        )
    )
    b.explain(case, "uploader", results["uploader"])


def large(b: Bench) -> None:
    """10,000 files: the uploader's time per file against its own at 1,000 files."""
    few, many = b.settings.files, b.settings.large

    def uploader(count: int) -> Callable[[int], UploaderRun]:
        def run(number: int) -> UploaderRun:
            files = plan(count, buckets=BUCKETS, prefix=f"run-{number:03d}/", seed=SEED)
            return b.uploaded(f"large/uploader {count}", b.tree(files))

        return run

    def s3_mv(run: int) -> float:
        tree = b.tree(plan(many, buckets=BUCKETS, prefix=f"run-{run:03d}/", seed=SEED))
        seconds = b.tools.s3_mv(tree)
        b.verified("large/s3 mv", tree)
        return seconds

    contenders: dict[str, Callable[[int], Any]] = {
        f"uploader {few}": uploader(few),
        f"uploader {many}": uploader(many),
        "s3 mv": s3_mv,
    }
    if b.with_s5cmd:
        contenders["s5cmd"] = lambda run: b.s5cmd(
            "large/s5cmd",
            b.tree(plan(many, buckets=BUCKETS, prefix=f"run-{run:03d}/", seed=SEED)),
        )
    results = b.interleave("large", contenders)
    up_few = _seconds(results[f"uploader {few}"])
    up_many = _seconds(results[f"uploader {many}"])
    mv = median(results["s3 mv"])
    case = f"large ({many:,} files)"
    b.rows += per_file_rows(case, few, up_few, many, up_many)
    b.rows.append(
        Row(
            case,
            f"aws s3 mv --recursive, {many:,} files",
            mv,
            f"{mv / many * 1000:.2f} ms/file; uploader {up_many / mv:.2f}x this",
        )
    )
    if "s5cmd" in results:
        b.rows.append(s5cmd_row(case, median(results["s5cmd"]), up_many))
    b.explain(case, f"uploader {many}", results[f"uploader {many}"])


def crowded(b: Bench) -> None:
    """Buckets already holding 20,000 unrelated objects each against empty buckets."""
    n, crowd = b.settings.files, b.settings.crowd
    crowded_buckets = ("crowd-a", "crowd-b")
    b.tools.moto.reset()
    b.tools.moto.create_buckets(crowded_buckets)
    for bucket in crowded_buckets:
        b.progress(f"crowded: putting {crowd:,} unrelated objects into {bucket} (not timed)")
        b.tools.moto.preload(bucket, crowd, prefix="archive/")

    def run_in(
        buckets: Sequence[str], label: str, *, split: bool = False
    ) -> Callable[[int], UploaderRun]:
        def run(number: int) -> UploaderRun:
            names = [name.format(run=number) for name in buckets]
            files = plan(n, buckets=names, prefix=f"run-{number:03d}/", seed=SEED)
            if split:  # two top-level directories: the ready keys share no prefix
                files = [replace(f, key=f"{'xy'[f.index % 4 // 2]}{f.key}") for f in files]
            made = [] if names == list(crowded_buckets) else names
            return b.uploaded(label, b.tree(files, buckets=made, reset=False))

        return run

    def s5cmd(number: int) -> float:
        files = plan(n, buckets=crowded_buckets, prefix=f"s5-{number:03d}/", seed=SEED)
        return b.s5cmd("crowded/s5cmd", b.tree(files, buckets=[], reset=False))

    contenders: dict[str, Callable[[int], Any]] = {
        "empty": run_in(("empty-{run:03d}-a", "empty-{run:03d}-b"), "crowded/empty"),
        "crowded": run_in(crowded_buckets, "crowded/crowded"),
        "no common prefix": run_in(crowded_buckets, "crowded/no prefix", split=True),
    }
    if b.with_s5cmd:
        contenders["s5cmd"] = s5cmd
    results = b.interleave("crowded", contenders)
    empty, full = _seconds(results["empty"]), _seconds(results["crowded"])
    unscoped = _seconds(results["no common prefix"])
    case = f"crowded ({n:,} files)"
    b.rows.append(Row(case, "uploader --once, empty buckets", empty))
    b.rows.append(
        Row(
            case,
            f"uploader --once, buckets holding {crowd:,} other objects each",
            full,
            f"{full / empty:.2f}x empty",
            Target(1.1, True),
            full / empty,
        )
    )
    b.rows.append(
        Row(
            case,
            "the same, keys under 2 top-level dirs (no common prefix)",
            unscoped,
            f"{unscoped / empty:.2f}x empty (not an issue-5 target)",
        )
    )
    if "s5cmd" in results:
        b.rows.append(s5cmd_row(f"{case}, crowded buckets", median(results["s5cmd"]), full))
    b.explain(case, "uploader into crowded buckets", results["crowded"])
    b.explain(case, "uploader into crowded buckets, no common prefix", results["no common prefix"])


def idle(b: Bench) -> None:
    """100,000 files of which none is ready: no aws process in the scan, a fast, small scan."""
    n = b.settings.idle
    b.tools.moto.reset()
    b.tools.moto.create_buckets(BUCKETS)
    b.progress(f"idle: writing {n:,} sparse files (not timed)")
    files = plan(n, buckets=BUCKETS, prefix="run-000/", seed=SEED)
    tree = write_tree(fresh_dir(b.root), files, age=0, sparse=True)

    def uploader(run: int) -> UploaderRun:
        result = b.tools.uploader(tree.root, stability=3600)
        left = len(leftovers(tree.root))
        stored = sum(
            page.get("KeyCount", 0)
            for bucket in BUCKETS
            for page in b.tools.moto.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        )
        b.idle_runs += 1
        if result.unstable != n or result.uploaded or left != n or stored:
            b.problems.append(
                f"idle: {result.unstable} unstable, {result.uploaded} uploaded, "
                f"{left} files left of {n}, {stored} objects in S3"
            )
        return result

    runs = b.interleave("idle", {"uploader": uploader})["uploader"]
    scan_calls = max(len(r.scan_calls) for r in runs)
    startup_calls = max(len(r.calls) - len(r.scan_calls) for r in runs)
    scan = median([r.scan_seconds for r in runs])
    rss = max(r.self_rss_kib for r in runs) / 1024
    kids_rss = max(r.children_rss_kib for r in runs) / 1024
    case = f"idle ({n:,} files, none ready)"
    b.rows.append(Row(case, "uploader --once (wall)", _seconds(runs)))
    b.rows.append(
        Row(
            case,
            "aws processes in the scan",
            None,
            f"{scan_calls} (+{startup_calls} at start-up: the access check)",
            Target(0, True, ""),
            scan_calls,
        )
    )
    b.rows.append(
        Row(
            case,
            "scan time (last-scan record)",
            scan,
            f"{scan:.2f} s",
            Target(1.5, True, " s"),
            scan,
        )
    )
    b.rows.append(
        Row(
            case,
            "peak RSS of the uploader process",
            None,
            f"{rss:.0f} MB (its largest aws process: {kids_rss:.0f} MB)",
            Target(150, True, " MB"),
            rss,
        )
    )
    b.explain(case, "uploader", runs)


def big(b: Bench) -> None:
    """One 256 MiB file: the uploader's throughput against one `aws s3 cp` of it."""
    size = b.settings.big_mib * MIB

    def files(run: int) -> list[FileSpec]:
        return [FileSpec("bench-big", f"run-{run:03d}/big.bin", size, run)]

    def uploader(run: int) -> UploaderRun:
        return b.uploaded("big/uploader", b.tree(files(run), buckets=["bench-big"]))

    def s3_cp(run: int) -> float:
        tree = b.tree(files(run), buckets=["bench-big"])
        seconds = b.tools.s3_cp(tree)
        b.verified("big/s3 cp", tree, local=False)
        return seconds

    contenders: dict[str, Callable[[int], Any]] = {"uploader": uploader, "s3 cp": s3_cp}
    results = b.interleave("big", contenders)
    up, cp = _seconds(results["uploader"]), median(results["s3 cp"])
    mib = b.settings.big_mib
    case = f"big (1 file, {mib} MiB)"
    b.rows.append(
        Row(
            case,
            "uploader --once",
            up,
            f"{mib / up:.0f} MiB/s = {cp / up:.2f}x the throughput of s3 cp",
            Target(0.9, False),
            cp / up,
        )
    )
    b.rows.append(Row(case, "aws s3 cp", cp, f"{mib / cp:.0f} MiB/s"))
    b.explain(case, "uploader", results["uploader"])


CASES: dict[str, Callable[[Bench], None]] = {
    "small": small,
    "large": large,
    "crowded": crowded,
    "idle": idle,
    "big": big,
}
