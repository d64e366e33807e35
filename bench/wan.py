"""The `wan` case of issue 21: every contender talks to moto through one link (`link.py`) that
adds a round trip's delay to each request (`--wan-delay-ms`, 50 ms), in three parts:
`small` (the small case's 1,000 files of 1 B-64 KiB in 2 buckets), `big` (one 256 MiB file at
a `--wan-mbit` cap, 100 Mbit/s) and `buckets` (manybuckets' 20 buckets of 50 files).

Same conventions as cases.py, through session.py: contenders interleaved, every run verified
(through moto directly, not the link), rows with targets. The requests each contender sent
through the link are a row of their own: at 50 ms each, they are most of the time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from contenders import UploaderRun
from link import Link, link
from report import Row, Target, median
from session import Bench
from trees import BUCKETS, MIB, SEED, FileSpec, Tree, plan

PARTS = ("small", "big", "buckets")
BIG_BUCKET = "bench-big"
UPLOADER, S3_MV, S3_CP, RCLONE, S5CMD = "uploader", "s3 mv", "s3 cp", "rclone", "s5cmd"
NAMES = {
    UPLOADER: "uploader --once",
    S3_MV: "aws s3 mv --recursive, per bucket in turn",
    S3_CP: "aws s3 cp",
    RCLONE: "rclone move --min-age 2s, per bucket",
    S5CMD: 's5cmd run: one mv "DIR/*" line per bucket',
}


def contenders(
    b: Bench,
    part: str,
    files: Callable[[int], list[FileSpec]],
    buckets: Sequence[str],
    *,
    aws: str = S3_MV,
) -> dict[str, Callable[[int], Any]]:
    """The uploader, `aws` (`s3 mv` per bucket, or `s3 cp` of each file), rclone and s5cmd,
    each on a fresh tree of `files(run)` in fresh `buckets`, each run verified."""
    label = f"wan {part}"

    def tree(run: int) -> Tree:
        return b.tree(files(run), buckets=buckets)

    def uploader(run: int) -> UploaderRun:
        return b.uploaded(f"{label}/{UPLOADER}", tree(run))

    def peer(
        name: str, move: Callable[[Tree], float], *, local: bool = True
    ) -> Callable[[int], float]:
        def run(number: int) -> float:
            made = tree(number)
            seconds = move(made)
            b.verified(f"{label}/{name}", made, local=local)
            return seconds

        return run

    found: dict[str, Callable[[int], Any]] = {UPLOADER: uploader}
    found[aws] = (
        peer(S3_CP, b.tools.s3_cp, local=False) if aws == S3_CP else peer(S3_MV, b.tools.s3_mv)
    )
    if b.settings.rclone and b.tools.rclone:
        found[RCLONE] = peer(RCLONE, b.tools.rclone_move)
    if b.with_s5cmd:
        found[S5CMD] = lambda run: b.s5cmd(f"{label}/{S5CMD}", tree(run))
    return found


@contextmanager
def via(b: Bench, proxy: Link) -> Iterator[None]:
    """Every contender started in the block sends its requests to the link, not to moto."""
    saved = b.tools
    b.tools = replace(saved, endpoint=proxy.url)
    try:
        yield
    finally:
        b.tools = saved


def through(
    b: Bench, proxy: Link, part: str, runners: dict[str, Callable[[int], Any]]
) -> tuple[dict[str, float], dict[str, int]]:
    """Run the contenders interleaved: median seconds, and requests per run (the median)
    through the link, per contender."""
    sent: dict[str, list[int]] = {name: [] for name in runners}

    def counted(name: str, runner: Callable[[int], Any]) -> Callable[[int], Any]:
        def run(number: int) -> Any:
            before = proxy.requests
            result = runner(number)
            sent[name].append(proxy.requests - before)
            return result

        return run

    results = b.interleave(f"wan {part}", {n: counted(n, r) for n, r in runners.items()})
    b.explain(f"wan {part}", NAMES[UPLOADER], results[UPLOADER])
    seconds = {
        name: median([r if isinstance(r, float) else r.seconds for r in runs])
        for name, runs in results.items()
    }
    return seconds, {name: int(median(counts)) for name, counts in sent.items()}


def ratio_rows(
    case: str, up: float, times: dict[str, float], targets: dict[str, float]
) -> list[Row]:
    """The uploader against each peer that ran (a target where the issue sets one), then the
    peers' own rows."""
    rows = []
    for name, seconds in times.items():
        if name == UPLOADER:
            continue
        limit = targets.get(name)
        rows.append(
            Row(
                case,
                f"uploader --once (against {name})",
                up,
                f"{up / seconds:.2f}x {name}",
                None if limit is None else Target(limit, True),
                up / seconds,
            )
        )
    rows += [Row(case, NAMES[name], s) for name, s in times.items() if name != UPLOADER]
    return rows


def requests_row(case: str, sent: dict[str, int]) -> Row:
    figure = ", ".join(f"{name} {count:,}" for name, count in sent.items())
    return Row(case, "  requests through the link per run", None, figure)


def many_files(b: Bench, proxy: Link, part: str) -> None:
    """`small` or `buckets`: the uploader against `aws s3 mv`, rclone and s5cmd."""
    s = b.settings
    if part == "small":
        names, count = list(BUCKETS), s.files
        case = f"wan {s.wan_delay_ms:g} ms: {count:,} files, {len(names)} buckets"
        targets = {S3_MV: 0.5, S5CMD: 1.2}
    else:
        names, count = [f"many-{i:02d}" for i in range(s.buckets)], s.buckets * s.per_bucket
        case = f"wan {s.wan_delay_ms:g} ms: {s.buckets} buckets x {s.per_bucket} files"
        targets = {S3_MV: 0.8}

    def files(run: int) -> list[FileSpec]:
        return plan(count, buckets=names, prefix=f"run-{run:03d}/", seed=SEED)

    times, sent = through(b, proxy, part, contenders(b, part, files, names))
    up = times[UPLOADER]
    b.rows.append(Row(case, NAMES[UPLOADER], up))
    b.rows += ratio_rows(case, up, times, targets)
    b.rows.append(requests_row(case, sent))


def big(b: Bench, proxy: Link) -> None:
    """One file at the cap: throughput and CPU per GiB against `aws s3 cp`."""
    s, mib = b.settings, b.settings.big_mib
    cap = f"{s.wan_mbit:g} Mbit/s" if s.wan_mbit else "no cap"
    case = f"wan {s.wan_delay_ms:g} ms, {cap}: 1 file, {mib} MiB"

    def files(run: int) -> list[FileSpec]:
        return [FileSpec(BIG_BUCKET, f"run-{run:03d}/big.bin", mib * MIB, run)]

    times, sent = through(b, proxy, "big", contenders(b, "big", files, [BIG_BUCKET], aws=S3_CP))
    up, cp = times[UPLOADER], times[S3_CP]
    per_gib = {
        name: median([c.per_gib or 0.0 for c in runs]) for name, runs in b.costs["wan big"].items()
    }
    b.rows.append(
        Row(
            case,
            NAMES[UPLOADER],
            up,
            f"{mib / up:.1f} MiB/s = {cp / up:.2f}x the throughput of s3 cp",
            Target(0.9, False),
            cp / up,
        )
    )
    b.rows.append(
        Row(
            case,
            "uploader CPU per GiB, aws children included",
            None,
            f"{per_gib[UPLOADER]:.2f} s = {per_gib[UPLOADER] / per_gib[S3_CP]:.2f}x s3 cp's",
            Target(1.3, True),
            per_gib[UPLOADER] / per_gib[S3_CP],
        )
    )
    for name, seconds in times.items():
        if name != UPLOADER:
            figure = f"{mib / seconds:.1f} MiB/s, CPU {per_gib[name]:.2f} s/GiB"
            b.rows.append(Row(case, NAMES[name], seconds, figure))
    b.rows.append(requests_row(case, sent))
    if s.wan_mbit:
        floor = mib * MIB * 8 / (s.wan_mbit * 1e6)
        b.notes.append(f"wan big: the cap alone takes {floor:.1f} s for {mib} MiB")


def wan(b: Bench) -> None:
    """The parts of `--wan-parts`, each through its own link to moto."""
    s = b.settings
    delay = s.wan_delay_ms / 1000
    for part in s.wan_parts:
        mbit = s.wan_mbit if part == "big" else None
        with link(b.tools.moto.url, delay=delay, mbit=mbit) as proxy, via(b, proxy):
            if part == "big":
                big(b, proxy)
            else:
                many_files(b, proxy, part)


CASES: dict[str, Callable[[Bench], None]] = {"wan": wan}
