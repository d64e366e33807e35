"""--metrics-file: valid Prometheus text (parsed with prometheus_client), from real runs."""

from __future__ import annotations

import os
import signal
import stat
import threading
import time
from pathlib import Path

import pytest
from fake_imds import ImdsState, fake_imds
from helpers import Moto, daemon, run_cli, run_in_process, tally, write
from prometheus_client.parser import text_string_to_metric_families

from awscli_uploader.model import NS
from awscli_uploader.ops.backlog import Backlog
from awscli_uploader.ops.metrics import Totals, merge_backlog, render
from awscli_uploader.scan.record import Stats, Tally

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> tuple[dict[str, str], Samples]:
    """Family types by name, and every sample by (name, labels); raises if the text is invalid."""
    types: dict[str, str] = {}
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return types, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(f"awscli_uploader_{name}", tuple(sorted(labels.items())))]


def _stats(**buckets: Tally) -> Stats:
    stats = Stats(started=1_800_000_000.5, seconds=1.25)
    stats.buckets.update(buckets)
    return stats


def test_render_is_valid_prometheus_text() -> None:
    totals = Totals()
    totals.add(_stats(**{"b-1": tally(uploaded=2, uploaded_bytes=30, present=1)}))
    totals.add(_stats(**{"b-1": tally(uploaded=1, uploaded_bytes=5, failed=2)}))
    now_ns = 1_800_000_100 * NS
    waiting = [
        Backlog("b-1", "b-1", files=2, bytes=7, unstable=1, oldest_mtime_ns=now_ns - 90 * NS),
        Backlog("weird", 'we"ird\\name\n', files=1, bytes=1, oldest_mtime_ns=now_ns),
    ]
    text = render(totals, _stats(), waiting, credentials_valid=True, now_ns=now_ns)
    types, samples = parse(text)
    assert types["awscli_uploader_uploaded_files"] == "counter"
    assert types["awscli_uploader_backlog_files"] == "gauge"
    assert value(samples, "uploaded_files_total", bucket="b-1") == 3
    assert value(samples, "uploaded_bytes_total", bucket="b-1") == 35
    assert value(samples, "present_files_total", bucket="b-1") == 1
    assert value(samples, "failed_files_total", bucket="b-1") == 2
    assert value(samples, "scans_total") == 2
    assert value(samples, "backlog_files", bucket="b-1") == 2
    assert value(samples, "backlog_bytes", bucket="b-1") == 7
    assert value(samples, "backlog_unstable_files", bucket="b-1") == 1
    assert value(samples, "backlog_oldest_age_seconds", bucket="b-1") == 90
    assert value(samples, "backlog_files", bucket='we"ird\\name\n') == 1  # escaped and back
    assert value(samples, "uploaded_files_total", bucket='we"ird\\name\n') == 0
    assert value(samples, "last_scan_start_time_seconds") == 1_800_000_000.5
    assert value(samples, "last_scan_duration_seconds") == 1.25
    assert value(samples, "credentials_valid") == 1
    types_lines = [line.split() for line in text.splitlines() if line.startswith("# TYPE")]
    counters = [name for _, _, name, kind in types_lines if kind == "counter"]
    assert len(counters) == 5
    assert [name for name in counters if not name.endswith("_total")] == []


@pytest.mark.parametrize(("valid", "sample"), [(True, 1), (False, 0), (None, 0)])
def test_credentials_gauge(valid: bool | None, sample: int) -> None:
    text = render(Totals(), Stats(), [], credentials_valid=valid, now_ns=0)
    assert value(parse(text)[1], "credentials_valid") == sample


def test_merge_backlog_of_two_directories_with_one_bucket_label() -> None:
    merged = merge_backlog(
        [
            Backlog("a_b", "a-b", files=1, bytes=2, unstable=1, oldest_mtime_ns=5),
            Backlog("a-b", "a-b", "keys could collide", files=2, bytes=3, oldest_mtime_ns=3),
        ]
    )
    assert list(merged) == ["a-b"]
    assert (merged["a-b"].files, merged["a-b"].bytes, merged["a-b"].unstable) == (3, 5, 1)
    assert merged["a-b"].oldest_mtime_ns == 3


@pytest.mark.slow
def test_metrics_file_from_a_real_run(tmp_path: Path, root: Path, moto: Moto, one_cli: str) -> None:
    moto.create_bucket("distributed-colony")
    moto.put("distributed-colony", "present.txt", b"here")
    write(root / "distributed_colony" / "a.png", b"a" * 1000)
    write(root / "distributed_colony" / "present.txt", b"here")
    writing = write(root / "distributed_colony" / "writing.png", b"w", mtime=None)
    done = threading.Event()

    def keep_writing() -> None:  # a writer that appends until the run is over
        while not done.wait(0.1):
            with open(writing, "ab") as handle:
                handle.write(b"w")

    writer = threading.Thread(target=keep_writing)
    writer.start()
    write(root / "distributed_colony" / "b.part", b"excluded")
    write(root / "missing-bucket" / "kept.txt", b"kept!")
    metrics_dir = tmp_path / "textfile"
    metrics_dir.mkdir()
    path = metrics_dir / "awscli_uploader.prom"
    result = run_cli(
        "--once",
        "-d",
        str(root),
        "--endpoint-url",
        moto.url,
        "--aws-cli",
        one_cli,
        "--metrics-file",
        str(path),
        "--exclude",
        "*.part",
        "--bucket-map",
        "distributed_colony=distributed-colony",
        "--if-exists",
        "keep",  # every key looked up first: present.txt counts as present
    )
    done.set()
    writer.join()
    assert result.returncode == 1, result.stdout + result.stderr  # missing-bucket failed
    _, samples = parse(path.read_text())
    assert value(samples, "uploaded_files_total", bucket="distributed-colony") == 1
    assert value(samples, "uploaded_bytes_total", bucket="distributed-colony") == 1000
    assert value(samples, "present_files_total", bucket="distributed-colony") == 1
    assert value(samples, "failed_files_total", bucket="missing-bucket") == 1
    assert value(samples, "failed_files_total", bucket="distributed-colony") == 0
    assert value(samples, "backlog_files", bucket="distributed-colony") == 1  # writing.png
    assert value(samples, "backlog_unstable_files", bucket="distributed-colony") == 1
    assert value(samples, "backlog_files", bucket="missing-bucket") == 1
    assert value(samples, "backlog_bytes", bucket="missing-bucket") == 5
    assert value(samples, "backlog_oldest_age_seconds", bucket="missing-bucket") > 3000
    assert value(samples, "scans_total") == 1
    assert value(samples, "credentials_valid") == 1
    assert abs(value(samples, "last_scan_start_time_seconds") - time.time()) < 120
    assert value(samples, "last_scan_duration_seconds") > 0
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644  # node_exporter runs as another user
    assert sorted(p.name for p in metrics_dir.iterdir()) == ["awscli_uploader.prom"]


@pytest.mark.slow
def test_daemon_counters_add_up_across_scans(tmp_path: Path, root: Path, moto: Moto) -> None:
    moto.create_bucket("bucket-one")
    path = tmp_path / "uploader.prom"
    write(root / "bucket-one" / "first.txt", b"1")
    args = ["-d", str(root), "-i", "1", "-s", "0", "--endpoint-url", moto.url]
    with daemon(tmp_path, *args, "--metrics-file", str(path)) as run:
        run.wait_for("uploaded 1 ")
        write(root / "bucket-one" / "second.txt", b"22")
        deadline = time.monotonic() + 60
        while True:
            samples = parse(path.read_text())[1] if path.exists() else {}
            if samples and value(samples, "uploaded_files_total", bucket="bucket-one") == 2:
                break
            assert time.monotonic() < deadline, run.output()
            time.sleep(0.2)
        assert value(samples, "uploaded_bytes_total", bucket="bucket-one") == 3
        assert value(samples, "scans_total") >= 2
        run.proc.send_signal(signal.SIGTERM)
        assert run.proc.wait(30) == 0


def test_credentials_gauge_drops_on_ec2_without_credentials(
    tmp_path: Path, root: Path, moto: Moto
) -> None:
    path = tmp_path / "uploader.prom"
    with fake_imds(ImdsState()) as url:
        env = {
            "AWS_EC2_METADATA_DISABLED": "false",
            "AWS_EC2_METADATA_SERVICE_ENDPOINT": url,
            "AWS_ACCESS_KEY_ID": "",
            "AWS_SECRET_ACCESS_KEY": "",
        }
        write(root / "bucket-one" / "f.txt", b"f")
        args = ["-d", str(root), "-i", "1", "--endpoint-url", moto.url, "--metrics-file", str(path)]
        with daemon(tmp_path, *args, env=env) as run:
            run.wait_for("scan:")
            deadline = time.monotonic() + 30
            while not path.exists():
                assert time.monotonic() < deadline, run.output()
                time.sleep(0.1)
            _, samples = parse(path.read_text())
            assert value(samples, "credentials_valid") == 0
            assert value(samples, "failed_files_total", bucket="bucket-one") >= 1
            run.proc.send_signal(signal.SIGTERM)
            assert run.proc.wait(30) == 0


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("missing/dir/m.prom", "does not exist"),
        ("root/inside.prom", "must be outside the root"),
        ("root/bucket-one/inside.prom", "must be outside the root"),
        ("root", "is a directory"),
    ],
)
def test_bad_metrics_file_exits_2(tmp_path: Path, where: str, message: str) -> None:
    (tmp_path / "root" / "bucket-one").mkdir(parents=True)
    result = run_in_process(
        "--once", "-d", str(tmp_path / "root"), "--metrics-file", str(tmp_path / where)
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
