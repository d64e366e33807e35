"""The benchmark's smallest configurations, so that no case can silently rot, and the wan
case's link."""

from __future__ import annotations

import http.client
import os
import pwd
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from helpers import IN_CI, REPO, cli_path

from bench.link import link

SMALLEST = ("--cases", "small", "--files", "20", "--sample", "3", "--repeat", "1", "--cli", "v1")
WRITER = "awsup-bench-writer"  # .ci/run creates it; the notlinkable case owns files by it
S5CMD = 's5cmd run: one mv "DIR/*" line per bucket'


def bench(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    if cli_path("v1") is None:
        pytest.skip("AWS CLI v1 is not installed")
    places = ("--workdir", str(tmp_path), "--results", str(tmp_path / "results"))
    return subprocess.run(
        [sys.executable, "bench/run.py", *args, "--repeat", "1", "--cli", "v1", *places],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )


@pytest.mark.slow
def test_bench_smallest_configuration_verifies(tmp_path: Path) -> None:
    done = bench(tmp_path, *SMALLEST, "--no-rclone")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verify: OK, 4 runs verified: 63 objects byte-equal" in done.stdout
    for contender in (
        "uploader --once",
        "aws s3 mv --recursive",
        "per file: head-object + cp",
        S5CMD,
    ):
        assert contender in done.stdout
    assert len(list((tmp_path / "results").glob("*-v1.json"))) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["results"]  # the work directory is gone


@pytest.mark.slow
@pytest.mark.parametrize(
    ("case", "sizes", "rows"),
    [
        (
            "history",
            ("--history", "200"),
            (
                "uploader --once, empty bucket",
                "uploader --once, images/ holding 200 objects",
                "LIST requests in 1 listing processes",  # the check before the upload is gone
                "peak RSS of its largest aws process at 200 held",
                S5CMD,
            ),
        ),
        (
            "backlog",
            ("--backlog", "300", "--files", "30"),
            ("uploader --once, 30 files", "uploader --once, 300 files", "peak RSS of the uploader"),
        ),
        (
            "idle",
            ("--idle", "50"),
            (
                "aws processes in the scan",
                "scan time (last-scan record)",  # read from the state directory, not the log
                "peak RSS of the uploader process",
                "1 idle runs: nothing uploaded, every file kept",
                "find ROOT -type f (the floor)",  # issue 21: bench/idle.py
                "daemon scan after the first (median)",
                "daemon CPU per idle hour at -i 60",
            ),
        ),
        (
            "manybuckets",
            ("--buckets", "3", "--per-bucket", "4"),
            ("uploader --once", "aws s3 mv --recursive, per bucket in turn", S5CMD),
        ),
    ],
)
def test_bench_small_configurations_verify(
    tmp_path: Path, case: str, sizes: tuple[str, ...], rows: tuple[str, ...]
) -> None:
    done = bench(tmp_path, "--cases", case, *sizes)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verify: OK" in done.stdout
    for row in rows:
        assert row in done.stdout, row
    if case == "manybuckets" and (shutil.which("rclone") or IN_CI):  # .ci/run installs it
        assert "rclone move --min-age 2s, per bucket" in done.stdout


@pytest.mark.slow
def test_bench_notlinkable_case_verifies(tmp_path: Path) -> None:
    """Needs root (to chown files to another user) and the writer user of .ci/run."""
    missing = "not root" if os.geteuid() != 0 else None
    try:
        pwd.getpwnam(WRITER)
    except KeyError:
        missing = missing or (f"no user {WRITER} (.ci/run creates it)" if IN_CI else None)
    if missing:
        if IN_CI:
            pytest.fail(f"the notlinkable benchmark can't run: {missing}")
        pytest.skip(f"the notlinkable benchmark can't run: {missing}")
    done = bench(tmp_path, "--cases", "notlinkable", "--notlinkable", "20")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verify: OK, 2 runs verified: 40 objects" in done.stdout
    assert f"uploader --once, files of {WRITER}, 0644" in done.stdout
    assert f"belong to {WRITER} (mode 0644) and could not be linked" in done.stdout


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
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


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
def test_bench_wan_case_verifies_and_costs_every_contender(tmp_path: Path) -> None:
    """The `buckets` part in one bucket (the `small` part differs only in sizes) and the big
    file, few processes each: the suite's time is tight."""
    sizes = ("--buckets", "1", "--per-bucket", "4", "--big-mib", "1")
    link = ("--wan-delay-ms", "20", "--wan-mbit", "50")
    done = bench(
        tmp_path, "--cases", "wan", "--wan-parts", "buckets,big", *sizes, *link, "--no-rclone"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verify: OK, 6 runs verified: 15 objects byte-equal" in done.stdout
    for row in (
        "uploader --once (against s3 mv)",
        "uploader --once (against s5cmd)",
        "uploader CPU per GiB, aws children included",
        "MiB/s = ",
    ):
        assert row in done.stdout, row
    sent = re.findall(
        r"requests through the link per run\s+uploader (\d+), s3 (?:mv|cp) (\d+)", done.stdout
    )
    assert len(sent) == 2 and all(int(n) > 0 for pair in sent for n in pair), sent
    split = re.search(
        r"time split: wan big, uploader --once .*s3 cp 1x \S+ \(CPU ([\d.]+)s\)", done.stdout
    )
    assert split is not None and float(split.group(1)) > 0, done.stdout
    small, big = cost_cells(done.stdout, "wan buckets"), cost_cells(done.stdout, "wan big")
    assert set(small) == {"uploader", "s3 mv", "s5cmd"} and set(big) == {
        "uploader",
        "s3 cp",
        "s5cmd",
    }
    for name, (wall, cpu, per_files, per_gib, *rss) in {**small, **big}.items():
        assert 0 < float(cpu.split()[0]) <= float(wall) * (os.cpu_count() or 1) + 0.1, name
        assert float(per_files) > 0 and float(per_gib) > 0, name
        assert bool(rss) == (name == "uploader"), name
    own = re.fullmatch(r"([\d.]+) \(own ([\d.]+), aws ([\d.]+)\)", small["uploader"][1])
    assert own is not None and float(own.group(3)) > float(own.group(2)) > 0  # aws processes
    peak = re.fullmatch(r"(\d+) MB \(largest aws (\d+) MB\)", small["uploader"][4])
    assert peak is not None and 10 <= int(peak.group(1)) <= 500 and 10 <= int(peak.group(2)) <= 500
