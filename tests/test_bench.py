"""The benchmark's smallest configurations, so that no case can silently rot, and the wan
case's link.

Every case runs in one `bench/run.py` (one moto server, one start-up), shared by the tests of
its rows: a case costs the aws processes its contenders start, about 0.7 s of CPU each,
whatever its size, so each runs at the size where it still runs all of its code."""

from __future__ import annotations

import http.client
import os
import pwd
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import NamedTuple

import pytest
from helpers import IN_CI, REPO, isolate_aws, required_cli, serving

from bench.link import link

WRITER = "awsup-bench-writer"  # .ci/run creates it; the notlinkable case owns files by it
S5CMD = 's5cmd run: one mv "DIR/*" line per bucket'
RCLONE = "rclone move --min-age 2s, per bucket"
# One file a case (backlog's second goes to the other bucket), manybuckets and wan's `buckets`
# part one bucket of 2 files, wan's `big` 1 MiB at 20 ms
SIZES = (
    "--files", "1", "--sample", "1", "--history", "200", "--backlog", "2", "--idle", "50",
    "--buckets", "1", "--per-bucket", "2", "--notlinkable", "1",
    "--wan-parts", "buckets,big", "--big-mib", "1", "--wan-delay-ms", "20", "--wan-mbit", "50",
)  # fmt: skip


class Case(NamedTuple):
    title: str  # how its rows in the table begin
    rows: tuple[str, ...]
    verified: tuple[int, int]  # the runs it verifies and their objects, rclone's apart
    rclone: tuple[int, int] = (0, 0)  # rclone's, where it runs


CASES = {
    "small": Case(
        "small (1 files)",
        (
            "uploader --once",
            "aws s3 mv --recursive",
            "per file: head-object + cp (1 sampled, x1)",
            S5CMD,
        ),
        (4, 4),
        (1, 1),
    ),
    "history": Case(
        "history (10 new files",
        (
            "uploader --once, empty bucket",
            "uploader --once, images/ holding 200 objects",
            "LIST requests in 1 listing processes",  # the check before the upload is gone
            "peak RSS of its largest aws process at 200 held",
            S5CMD,
        ),
        (3, 30),
    ),
    "backlog": Case(
        "backlog (2 files",
        ("uploader --once, 1 files", "uploader --once, 2 files", "peak RSS of the uploader"),
        (2, 3),
    ),
    "idle": Case(
        "idle (50 files",
        (
            "aws processes in the scan",
            "scan time (last-scan record)",  # read from the state directory, not the log
            "peak RSS of the uploader process",
            "find ROOT -type f (the floor)",  # issue 21: bench/idle.py
            "daemon scan after the first (median)",
            "daemon CPU per idle hour at -i 60",
            "daemon, every file excluded (-s 2): scan after the first (median)",
            "daemon, every file excluded (-s 2): CPU per idle hour at -i 60",
        ),
        (0, 0),  # verified the other way round: `1 idle runs` in the verify line
    ),
    "manybuckets": Case(
        "manybuckets (1 buckets x 2 files)",
        ("uploader --once", "aws s3 mv --recursive, per bucket in turn", S5CMD),
        (3, 6),
        (1, 2),
    ),
    "wan": Case(
        "wan 20 ms",
        (
            "uploader --once (against s3 mv)",
            "uploader --once (against s5cmd)",
            "uploader CPU per GiB, aws children included",
            "MiB/s = ",
        ),
        (6, 9),
        (2, 3),
    ),
    "notlinkable": Case(
        "notlinkable (1 files)", (f"uploader --once, files of {WRITER}, 0644",), (2, 2)
    ),
}


def bench(places: Path, *args: str) -> subprocess.CompletedProcess[str]:
    required_cli("v1")  # a skip here, a failure in CI (every bench test shares this run)
    where = ("--workdir", str(places), "--results", str(places / "results"))
    return subprocess.run(
        [sys.executable, "bench/run.py", *args, "--repeat", "1", "--cli", "v1", *where],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )


def notlinkable_missing() -> str | None:
    """Why the notlinkable case can't run here: it needs root (to chown files to another user)
    and, in CI, the writer user of .ci/run (elsewhere the benchmark creates it)."""
    if os.geteuid() != 0:
        return "not root"
    try:
        pwd.getpwnam(WRITER)
    except KeyError:
        return f"no user {WRITER} (.ci/run creates it)" if IN_CI else None
    return None


class Ran(NamedTuple):
    done: subprocess.CompletedProcess[str]
    places: Path  # the benchmark's --workdir, its results under it
    cases: tuple[str, ...]
    rclone: bool  # rclone's runs are in (.ci/run installs it)

    def ok(self) -> None:
        """The run exited 0: every case ran and verified."""
        assert self.done.returncode == 0, self.done.stdout + self.done.stderr

    def rows(self, case: str) -> str:
        """The table's lines of `case`, once the run has verified every case."""
        self.ok()
        lines = self.done.stdout.splitlines()
        return "\n".join(line for line in lines if line.startswith(CASES[case].title))


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Ran:
    cases = tuple(name for name in CASES if name != "notlinkable" or not notlinkable_missing())
    places = tmp_path_factory.mktemp("bench")
    with pytest.MonkeyPatch.context() as patch:  # conftest's isolation is set up per test
        isolate_aws(patch, tmp_path_factory)
        done = bench(places, "--cases", ",".join(cases), *SIZES)
    return Ran(done, places, cases, rclone=bool(shutil.which("rclone")) or IN_CI)


@pytest.mark.slow
def test_bench_smallest_configuration_verifies(ran: Ran) -> None:
    """Every run of every case verified (the sum of theirs), the raw figures written and the
    work directory removed."""
    ran.ok()
    runs = sum(CASES[c].verified[0] + ran.rclone * CASES[c].rclone[0] for c in ran.cases)
    objects = sum(CASES[c].verified[1] + ran.rclone * CASES[c].rclone[1] for c in ran.cases)
    verified = f"verify: OK, {runs} runs verified: {objects} objects byte-equal"
    assert verified in ran.done.stdout, ran.done.stdout[-1000:]
    assert "; 1 idle runs: nothing uploaded, every file kept" in ran.done.stdout
    for case in ran.cases:
        assert f"{case}: done in " in ran.done.stdout, case
    assert len(list((ran.places / "results").glob("*-v1.json"))) == 1
    assert [p.name for p in ran.places.iterdir()] == ["results"]  # the work directory is gone


@pytest.mark.slow
@pytest.mark.parametrize("case", ["small", "history", "backlog", "idle", "manybuckets"])
def test_bench_small_configurations_verify(ran: Ran, case: str) -> None:
    rows = ran.rows(case)
    for row in CASES[case].rows:
        assert row in rows, row
    if ran.rclone and CASES[case].rclone != (0, 0):
        assert RCLONE in rows


@pytest.mark.slow
def test_bench_notlinkable_case_verifies(ran: Ran) -> None:
    missing = notlinkable_missing()
    if missing:
        if IN_CI:
            pytest.fail(f"the notlinkable benchmark can't run: {missing}")
        pytest.skip(f"the notlinkable benchmark can't run: {missing}")
    rows = ran.rows("notlinkable")
    for row in CASES["notlinkable"].rows:
        assert row in rows, row
    assert f"belong to {WRITER} (mode 0644) and could not be linked" in ran.done.stdout


class _Echo(BaseHTTPRequestHandler):
    """Answers every request at once with the length of its body."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_PUT(self) -> None:
        size = len(self.rfile.read(int(self.headers["Content-Length"])))
        body = str(size).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def echo() -> Iterator[str]:
    with serving(_Echo) as url:
        yield url


def put_through(url: str, bodies: list[bytes]) -> tuple[float, list[bytes]]:
    """The bodies PUT one after another on one kept-alive connection: seconds, answers."""
    port = int(url.rsplit(":", 1)[1])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    answers = []
    begin = time.perf_counter()
    for body in bodies:
        connection.request("PUT", "/x", body=body)
        answers.append(connection.getresponse().read())
    connection.close()
    return time.perf_counter() - begin, answers


def test_link_delays_each_request_on_a_kept_alive_connection(echo: str) -> None:
    with link(echo, delay=0.1) as proxy:
        seconds, answers = put_through(proxy.url, [b"a", b"bb", b"ccc", b"dddd"])
    assert answers == [b"1", b"2", b"3", b"4"]
    assert proxy.requests == 4
    assert 0.4 <= seconds < 2.0


def test_link_caps_the_bandwidth(echo: str) -> None:
    with link(echo, delay=0, mbit=4) as proxy:  # 500,000 bytes/s
        seconds, answers = put_through(proxy.url, [b"x" * 250_000])
    assert answers == [b"250000"]
    assert 0.5 <= seconds < 3.0


def test_traced_cli_records_each_process_and_its_cpu(tmp_path: Path) -> None:
    """The wrapper passes the exit code on and traces the CPU the process burned (the
    `time split` notes add it up per kind of aws call)."""
    trace = tmp_path / "trace"
    burn = "import sys; sum(range(10**7)); sys.exit(3)"
    env = {**os.environ, "BENCH_AWS_CLI": sys.executable, "BENCH_AWS_TRACE": str(trace)}
    done = subprocess.run([REPO / "bench" / "aws-traced.sh", "-c", burn], env=env, check=False)
    assert done.returncode == 3
    start, end, code, ticks, first, second = trace.read_text().split(" ", 5)
    cpu = int(ticks) / os.sysconf("SC_CLK_TCK")
    assert code == "3" and first == "-c" and second == burn + "\n"
    assert 0.05 <= cpu <= (float(end) - float(start)) * (os.cpu_count() or 1) + 0.02


def cost_cells(stdout: str, case: str) -> dict[str, list[str]]:
    """The host-cost table's cells of `case`, per contender."""
    rows = [re.split(r"\s{2,}", line) for line in stdout.splitlines()]
    return {row[1]: row[2:] for row in rows if row[0] == case}


@pytest.mark.slow
def test_bench_wan_case_verifies_and_costs_every_contender(ran: Ran) -> None:
    """The `buckets` part in one bucket (the `small` part differs only in sizes) and the big
    file, few processes each: the suite's time is tight."""
    rows = ran.rows("wan")
    for row in CASES["wan"].rows:
        assert row in rows, row
    out = ran.done.stdout
    sent = re.findall(
        r"requests through the link per run\s+uploader (\d+), s3 (?:mv|cp) (\d+)", out
    )
    assert len(sent) == 2 and all(int(n) > 0 for pair in sent for n in pair), sent
    split = re.search(r"time split: wan big, uploader --once .*s3 cp 1x \S+ \(CPU ([\d.]+)s\)", out)
    assert split is not None and float(split.group(1)) > 0, out
    buckets, big = cost_cells(out, "wan buckets"), cost_cells(out, "wan big")
    peers = {"s5cmd"} | ({"rclone"} if ran.rclone else set())
    assert set(buckets) == {"uploader", "s3 mv", *peers}, buckets
    assert set(big) == {"uploader", "s3 cp", *peers}, big
    for name, (wall, cpu, per_files, per_gib, *rss) in {**buckets, **big}.items():
        assert 0 < float(cpu.split()[0]) <= float(wall) * (os.cpu_count() or 1) + 0.1, name
        assert float(per_files) > 0 and float(per_gib) > 0, name
        assert bool(rss) == (name == "uploader"), name
    own = re.fullmatch(r"([\d.]+) \(own ([\d.]+), aws ([\d.]+)\)", buckets["uploader"][1])
    assert own is not None and float(own.group(3)) > float(own.group(2)) > 0  # aws processes
    peak = re.fullmatch(r"(\d+) MB \(largest aws (\d+) MB\)", buckets["uploader"][4])
    assert peak is not None and 10 <= int(peak.group(1)) <= 500 and 10 <= int(peak.group(2)) <= 500


def test_a_workdir_it_cannot_use_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """Before any server starts: a --workdir under a file can't be made."""
    required_cli("v1")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    args = ["--cli", "v1", "--cases", "small", "--workdir", str(blocker / "work")]
    done = subprocess.run(
        [sys.executable, "bench/run.py", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith(f"bench: error: --workdir {blocker / 'work'}: ")
    assert len(done.stderr.strip().splitlines()) == 1
    assert done.stdout == ""
