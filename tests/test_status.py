"""`awscli-uploader status`: backlog, daemon and last scan, with no AWS access and no lock."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
from helpers import Moto, daemon, run_in_process, write

from awscli_uploader.local.state import StateDir
from awscli_uploader.ops.status import human_age, human_bytes

NO_AWS = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_CLI": "/nonexistent/aws"}


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1536, "1.5 KiB"),
        (5 * 2**20, "5.0 MiB"),
        (3 * 2**40, "3.0 TiB"),
    ],
)
def test_human_bytes(size: int, text: str) -> None:
    assert human_bytes(size) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (0.4, "0s"), (-3, "0s"), (59, "59s"), (65, "1m05s"), (7300, "2h01m"),
     (90000, "1d01h")],
)  # fmt: skip
def test_human_age(seconds: float | None, text: str) -> None:
    assert human_age(seconds) == text


def _status(root: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, object]:
    result = run_in_process(
        "status", "-d", str(root), "--json", *args, env={**NO_AWS, **(env or {})}
    )
    assert result.returncode == 0, result.stderr
    data: dict[str, object] = json.loads(result.stdout)
    return data


def _status_after_a_scan(root: Path, timeout: float = 30) -> dict[str, object]:
    """The status once a scan's record is there: the daemon logs its summary line first,
    then writes the record."""
    end = time.monotonic() + timeout
    while not isinstance((data := _status(root))["last_scan"], dict):
        assert time.monotonic() < end, f"no scan recorded: {data}"
        time.sleep(0.1)
    return data


def test_status_of_a_root_no_daemon_has_seen(root: Path) -> None:
    write(root / "bucket-one" / "old.txt", b"12345")
    write(root / "bucket-one" / "deep" / "fresh.txt", b"1", mtime=time.time())
    write(root / "bad_name" / "f.txt", b"x")
    write(root / "loose.txt", b"no bucket: not backlog")
    (root / "empty-bucket").mkdir()
    data = _status(root)
    assert data["daemon"] == {"running": False, "pid": None}
    assert data["last_scan"] is None
    backlog = {b["bucket"]: b for b in data["backlog"]}  # type: ignore[attr-defined]
    assert backlog["bucket-one"]["files"] == 2
    assert backlog["bucket-one"]["bytes"] == 6
    assert backlog["bucket-one"]["unstable"] == 1
    assert backlog["bucket-one"]["oldest_age_seconds"] > 3000
    assert "invalid bucket name" in backlog["bad_name"]["problem"]
    assert backlog["empty-bucket"]["files"] == 0
    assert backlog["empty-bucket"]["oldest_age_seconds"] is None
    assert data["total"] == {"files": 3, "bytes": 7, "unstable": 1}
    assert not StateDir(root).path.exists()  # status creates nothing

    text = run_in_process("status", "-d", str(root), env=NO_AWS)
    assert text.returncode == 0, text.stderr
    assert "daemon:     not running" in text.stdout
    assert "last scan:  none recorded yet" in text.stdout
    assert "invalid bucket name; stays local" in text.stdout


def test_status_options_given_before_the_subcommand(root: Path) -> None:
    write(root / "bucket-one" / "a.tmp", b"x")
    write(root / "bucket-one" / "b.txt", b"x")
    result = run_in_process("-d", str(root), "--exclude", "*.tmp", "status", "--json", env=NO_AWS)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["total"]["files"] == 1


@pytest.mark.slow
def test_status_while_a_daemon_runs_uses_its_settings(
    tmp_path: Path, root: Path, moto: Moto
) -> None:
    moto.create_bucket("distributed-colony")
    write(root / "distributed_colony" / "done.png", b"done")
    write(root / "distributed_colony" / "big.bin.part", b"being written")
    write(root / "missing-bucket" / "kept.txt", b"kept")
    args = ["-d", str(root), "-i", "60", "-s", "5", "--endpoint-url", moto.url]
    filters = ["--exclude", "*.part", "--bucket-map", "distributed_colony=distributed-colony"]
    with daemon(tmp_path, *args, *filters) as run:
        run.wait_for("scan:")
        data = _status_after_a_scan(root)
        assert data["daemon"] == {"running": True, "pid": run.proc.pid}
        scan = data["last_scan"]
        assert isinstance(scan, dict)
        assert scan["mode"] == "daemon"
        assert scan["pid"] == run.proc.pid
        assert (scan["uploaded"], scan["failed"], scan["excluded"]) == (1, 1, 1)
        assert scan["buckets"]["distributed-colony"]["uploaded"] == 1
        assert scan["credentials_valid"] is True
        assert scan["settings"] == {
            "stability": 5.0,
            "excludes": ["*.part"],
            "bucket_map": ["distributed_colony=distributed-colony"],
        }
        # the daemon's excludes and map apply, so the .part file isn't backlog
        backlog = {b["bucket"]: b for b in data["backlog"]}  # type: ignore[attr-defined]
        assert backlog["distributed-colony"]["directory"] == "distributed_colony"
        assert backlog["distributed-colony"]["files"] == 0
        assert backlog["missing-bucket"]["files"] == 1
        # given explicitly, they win
        explicit = _status(root, "--exclude", "nothing")
        assert explicit["total"]["files"] == 2  # type: ignore[index]

        text = run_in_process("status", "-d", str(root), env=NO_AWS).stdout
        assert f"daemon:     running, pid {run.proc.pid}" in text
        assert "uploaded 1 (4 B)" in text
        assert "credentials: valid at the last scan" in text
        assert "from distributed_colony/" in text
        run.proc.send_signal(signal.SIGTERM)
        assert run.proc.wait(30) == 0
    assert _status(root)["daemon"] == {"running": False, "pid": None}


@pytest.mark.slow
def test_once_leaves_a_record_but_dry_run_does_not(root: Path, moto: Moto) -> None:
    moto.create_bucket("bucket-one")
    write(root / "bucket-one" / "a.txt", b"a")
    common = ["--once", "-d", str(root), "--endpoint-url", moto.url]
    assert run_in_process(*common, "--dry-run").returncode == 0
    assert _status(root)["last_scan"] is None
    assert run_in_process(*common).returncode == 0
    scan = _status(root)["last_scan"]
    assert isinstance(scan, dict)
    assert (scan["mode"], scan["uploaded"], scan["uploaded_bytes"]) == ("once", 1, 1)


def test_status_with_an_unreadable_record(root: Path) -> None:
    StateDir(root).path.mkdir()
    StateDir(root).last_scan.write_text("{half")
    assert "not valid JSON" in _status(root)["last_scan"]["error"]  # type: ignore[index]
    text = run_in_process("status", "-d", str(root), env=NO_AWS)
    assert text.returncode == 0
    assert "not valid JSON" in text.stdout


def test_status_of_a_missing_root_exits_2(tmp_path: Path) -> None:
    result = run_in_process("status", "-d", str(tmp_path / "missing"), env=NO_AWS)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "does not exist" in result.stderr
    afile = write(tmp_path / "file", b"")
    assert "is not a directory" in run_in_process("status", "-d", str(afile), env=NO_AWS).stderr
