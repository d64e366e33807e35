"""The cases of issue 11: a scan's cost must follow its batch, not the bucket's history,
the size of the backlog or who owns the files; and many small buckets.

Same conventions as cases.py, through session.py: contenders interleaved, every run verified,
rows with targets.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import random
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from contenders import UploaderRun
from host import REPO, BenchError
from report import Row, Target, median, median_run, per_file_rows, s5cmd_row
from session import Bench
from trees import BUCKETS, MAX_SIZE, SEED, FileSpec, Tree, plan

HISTORY_BUCKET = "hist-images"
BATCH = 10  # new files per scan in the history case
BACKLOG_MAX_SIZE = 4096  # 200,000 files of up to 64 KiB would not fit in moto's memory
WRITER = "awsup-bench-writer"  # owns the files the daemon may read but not hard-link
# The daemon runs as root without any capability: the kernel then treats it like any
# unprivileged user (protected hard links, leases), while the interpreter and the CLI
# under /root (mode 0700) stay reachable, which they are not for another user.
NO_CAPS = ("setpriv", "--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-all", "--")
PROTECTED_HARDLINKS = Path("/proc/sys/fs/protected_hardlinks")


def hashed(tag: str, i: int) -> str:
    """A key like the ones image pipelines write: no shared prefix beyond `images/`."""
    return f"images/{hashlib.sha1(f'{tag}-{i}'.encode()).hexdigest()}.png"


def processes(run: UploaderRun) -> str:
    """The aws processes of a run's scan, by kind."""
    kinds = Counter(c.kind for c in run.scan_calls)
    return ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items())) or "none"


def listings(run: UploaderRun) -> int:
    return sum(1 for c in run.scan_calls if "list-objects" in c.kind or c.kind == "s3 ls")


def scan_figure(run: UploaderRun) -> str:
    return (
        f"{run.list_requests} LIST requests in {listings(run)} listing processes; "
        f"{len(run.scan_calls)} aws processes in the scan ({processes(run)})"
    )


def rss_rows(case: str, where: str, runs: Sequence[UploaderRun], limit: float) -> list[Row]:
    own = max(r.self_rss_kib for r in runs) / 1024
    kid = max(r.children_rss_kib for r in runs) / 1024
    return [
        Row(
            case,
            f"peak RSS of the uploader{where}",
            None,
            f"{own:.0f} MB",
            Target(limit, True, " MB"),
            own,
        ),
        Row(
            case,
            f"peak RSS of its largest aws process{where}",
            None,
            f"{kid:.0f} MB",
            Target(limit, True, " MB"),
            kid,
        ),
    ]


def new_files(bucket: str, tag: str) -> list[FileSpec]:
    """The history case's batch: BATCH files with hashed names, seeded by `tag`."""
    rng = random.Random(tag)
    index = int(hashlib.sha1(tag.encode()).hexdigest()[:6], 16)
    return [
        FileSpec(bucket, hashed(tag, i), rng.randint(1, MAX_SIZE), index + i) for i in range(BATCH)
    ]


def history_runs(b: Bench, h: int, *, peer: bool) -> dict[str, list[Any]]:
    """With H objects held: the empty-bucket runs, the held-bucket runs, s5cmd (`peer`)."""

    def empty(run: int) -> UploaderRun:
        name = f"hist-empty-{h}-{run:03d}"
        tree = b.tree(new_files(name, f"new-{h}-{run}"), buckets=[name], reset=False)
        return b.uploaded("history/empty", tree)

    def full(run: int) -> UploaderRun:
        tree = b.tree(new_files(HISTORY_BUCKET, f"new-{h}-{run}"), buckets=[], reset=False)
        return b.uploaded(f"history/{h}", tree, listing=False)

    def s5cmd(run: int) -> float:
        tree = b.tree(new_files(HISTORY_BUCKET, f"s5-{h}-{run}"), buckets=[], reset=False)
        return b.s5cmd("history/s5cmd", tree, listing=False)

    contenders: dict[str, Callable[[int], Any]] = {"empty": empty, "held": full}
    if peer:
        contenders["s5cmd"] = s5cmd
    return b.interleave(f"history {h:,}", contenders)


def history(b: Bench) -> None:
    """10 new files with hashed names into a prefix already holding H objects, per H;
    each H is measured beside its own empty-bucket runs."""
    sizes = sorted(set(b.settings.history))
    b.tools.moto.reset()
    b.tools.moto.create_buckets([HISTORY_BUCKET])
    case = f"history ({BATCH} new files, hashed names)"
    held, empties, rows = 0, [], []
    for h in sizes:
        b.progress(f"history: putting {h - held:,} objects under images/ (not timed)")
        old = [(hashed("old", i), i % 97) for i in range(held, h)]
        b.tools.moto.put_direct(HISTORY_BUCKET, old)
        held = h
        results = history_runs(b, h, peer=h == sizes[-1] and b.with_s5cmd)
        fulls = results["held"]
        empties += results["empty"]
        e, f = median([r.seconds for r in results["empty"]]), median([r.seconds for r in fulls])
        target = Target(1.3 if h <= 30_000 else 1.5, True)
        rows.append(
            Row(
                case,
                f"uploader --once, images/ holding {h:,} objects",
                f,
                f"{f / e:.2f}x empty (measured beside it)",
                target,
                f / e,
            )
        )
        rows.append(Row(case, f"  its scan at {h:,}", None, scan_figure(median_run(fulls))))
        if "s5cmd" in results:
            rows.append(s5cmd_row(f"{case}, {h:,} held", median(results["s5cmd"]), f))
        b.explain(case, f"uploader, images/ holding {h:,}", fulls)
    e = median([r.seconds for r in empties])
    b.rows.append(Row(case, "uploader --once, empty bucket", e, scan_figure(median_run(empties))))
    b.rows += rows
    b.rows += rss_rows(case, f" at {sizes[-1]:,} held", fulls, 200)
    b.explain(case, "uploader, empty bucket", empties)


def backlog(b: Bench) -> None:
    """A backlog of N ready files drained by one `--once`: time per file and memory."""
    few, many = b.settings.files, b.settings.backlog

    def uploader(count: int) -> Callable[[int], UploaderRun]:
        def run(number: int) -> UploaderRun:
            if count > 10_000:
                b.progress(f"backlog: writing {count:,} files (not timed)")
            files = plan(
                count,
                buckets=BUCKETS,
                prefix=f"run-{number:03d}/",
                seed=SEED,
                max_size=BACKLOG_MAX_SIZE,
            )
            return b.uploaded(f"backlog/uploader {count}", b.tree(files))

        return run

    small, big = f"uploader {few}", f"uploader {many}"
    results = b.interleave("backlog", {small: uploader(few), big: uploader(many)})
    up_few, up_many = (
        median([r.seconds for r in results[small]]),
        median([r.seconds for r in results[big]]),
    )
    case = f"backlog ({many:,} files, 1 B-{BACKLOG_MAX_SIZE // 1024} KiB)"
    b.rows += per_file_rows(case, few, up_few, many, up_many)
    b.rows.append(Row(case, "  its scan", None, scan_figure(median_run(results[big]))))
    b.rows += rss_rows(case, "", results[big], 300)
    b.explain(case, big, results[big])


def manybuckets(b: Bench) -> None:
    """20 bucket directories of 50 files: the uploader against per-bucket peers and s5cmd."""
    s = b.settings
    names = [f"many-{i:02d}" for i in range(s.buckets)]
    count = s.buckets * s.per_bucket

    def files(run: int) -> list[FileSpec]:
        return plan(count, buckets=names, prefix=f"run-{run:03d}/", seed=SEED)

    def uploader(run: int) -> UploaderRun:
        return b.uploaded("manybuckets/uploader", b.tree(files(run), buckets=names))

    def s3_mv(run: int) -> float:
        tree = b.tree(files(run), buckets=names)
        seconds = b.tools.s3_mv(tree)
        b.verified("manybuckets/s3 mv", tree)
        return seconds

    def rclone(run: int) -> float:
        tree = b.tree(files(run), buckets=names)
        seconds = b.tools.rclone_move(tree)
        b.verified("manybuckets/rclone", tree)
        return seconds

    contenders: dict[str, Callable[[int], Any]] = {"uploader": uploader, "s3 mv": s3_mv}
    if s.rclone and b.tools.rclone:
        contenders["rclone"] = rclone
    if b.with_s5cmd:
        contenders["s5cmd"] = lambda run: b.s5cmd(
            "manybuckets/s5cmd", b.tree(files(run), buckets=names)
        )
    results = b.interleave("manybuckets", contenders)
    up, mv = median([r.seconds for r in results["uploader"]]), median(results["s3 mv"])
    case = f"manybuckets ({s.buckets} buckets x {s.per_bucket} files)"
    b.rows.append(
        Row(case, "uploader --once", up, f"{up / mv:.2f}x s3 mv", Target(1.0, True), up / mv)
    )
    if "rclone" in results:
        rc = median(results["rclone"])
        b.rows.append(
            Row(
                case,
                "uploader --once (against rclone)",
                up,
                f"{up / rc:.2f}x rclone",
                Target(2.0, True),
                up / rc,
            )
        )
    b.rows.append(Row(case, "  its scan", None, scan_figure(median_run(results["uploader"]))))
    b.rows.append(Row(case, "aws s3 mv --recursive, per bucket in turn", mv))
    if "rclone" in results:
        b.rows.append(Row(case, "rclone move --min-age 2s, per bucket", median(results["rclone"])))
    if "s5cmd" in results:
        b.rows.append(s5cmd_row(case, median(results["s5cmd"]), up))
    b.explain(case, "uploader", results["uploader"])


def writer_user() -> tuple[int, int]:
    """(uid, gid) of the user owning the not-linkable files, created when missing (root only)."""
    if os.geteuid() != 0:
        raise BenchError("the notlinkable case needs root: it chowns files to another user")
    if shutil.which("setpriv") is None:
        raise BenchError("the notlinkable case needs setpriv (util-linux)")
    try:
        entry = pwd.getpwnam(WRITER)
    except KeyError:
        args = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", WRITER]
        made = subprocess.run(args, capture_output=True, text=True, check=False)
        if made.returncode != 0:
            raise BenchError(f"useradd {WRITER} exited {made.returncode}: {made.stderr}") from None
        entry = pwd.getpwnam(WRITER)
    return entry.pw_uid, entry.pw_gid


def hand_over(tree: Tree, owner: tuple[int, int]) -> None:
    for spec in tree.files:
        os.chown(tree.path(spec), *owner)
        os.chmod(tree.path(spec), 0o644)


def can_link(path: Path) -> bool:
    """Whether the daemon (root without capabilities) may hard-link `path`."""
    args = [*NO_CAPS, sys.executable, "-m", "bench.link_probe", str(path), f"{path}.link"]
    done = subprocess.run(args, capture_output=True, check=False, cwd=REPO)
    return done.returncode == 0


def notlinkable(b: Bench) -> None:
    """1,000 files the daemon may read but not hard-link against 1,000 it may link."""
    n = b.settings.notlinkable
    writer = writer_user()
    protected = PROTECTED_HARDLINKS.read_text().strip()
    probed: list[bool] = []

    def run_with(owner: tuple[int, int] | None, label: str) -> Callable[[int], UploaderRun]:
        def run(number: int) -> UploaderRun:
            files = plan(n, buckets=BUCKETS, prefix=f"run-{number:03d}/", seed=SEED)
            tree = b.tree(files)
            if owner is not None:
                hand_over(tree, owner)
                if not probed:
                    probed.append(can_link(tree.path(tree.files[0])))
            return b.uploaded(label, tree, prefix=NO_CAPS)

        return run

    results = b.interleave(
        "notlinkable",
        {
            "linkable": run_with(None, "notlinkable/linkable"),
            "not linkable": run_with(writer, "notlinkable/not linkable"),
        },
    )
    b.notes.append(
        f"notlinkable: fs.protected_hardlinks = {protected}; the daemon runs as root without "
        f"capabilities; the not-linkable files belong to {WRITER} (mode 0644) and "
        + ("WERE LINKABLE: the case measured nothing" if any(probed) else "could not be linked")
    )
    yes, no = results["linkable"], results["not linkable"]
    ok, bad = median([r.seconds for r in yes]), median([r.seconds for r in no])
    case = f"notlinkable ({n:,} files)"
    b.rows.append(Row(case, "uploader --once, linkable files", ok, scan_figure(median_run(yes))))
    b.rows.append(
        Row(
            case,
            f"uploader --once, files of {WRITER}, 0644",
            bad,
            f"{bad / ok:.2f}x linkable",
            Target(1.5, True),
            bad / ok,
        )
    )
    b.rows.append(Row(case, "  its scan", None, scan_figure(median_run(no))))
    b.explain(case, "uploader, not linkable", no)


CASES: dict[str, Callable[[Bench], None]] = {
    "history": history,
    "backlog": backlog,
    "manybuckets": manybuckets,
    "notlinkable": notlinkable,
}
