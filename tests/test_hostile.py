"""Odd trees, refused deletes, and nothing secret in the logs."""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import pytest
from helpers import Moto, make_uploader, os_fault, run_cli, tree, write

from awscli_uploader.local.state import rename_noreplace
from awscli_uploader.model import NS, Candidate, Skipped
from awscli_uploader.scan import settle as settle_module
from awscli_uploader.scan.plan import scan


def test_refused_delete_is_a_warning_and_retried(
    root: Path,
    moto: Moto,
    one_cli: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    moto.create_bucket("ro-bucket")
    path = write(root / "ro-bucket" / "f.txt", b"data")

    def refused(target: Path) -> OSError | None:
        # root may unlink anything, so a read-only disk is injected here
        return PermissionError(13, "Permission denied", str(target)) if target == path else None

    def refuse_rename(source: Path, target: Path) -> None:
        error = refused(source)
        if error is not None:
            raise error
        real_rename(source, target)

    real_rename = rename_noreplace  # renameat2, which os_fault can't see
    uploader = make_uploader(root, moto, one_cli)
    with (
        caplog.at_level(logging.INFO),
        os_fault(refused, "unlink"),
        pytest.MonkeyPatch.context() as patch,
    ):
        patch.setattr(settle_module, "rename_noreplace", refuse_rename)
        stats = uploader.scan_once()
    assert stats.failed == 1
    assert path.exists()
    assert moto.get("ro-bucket", "f.txt") == b"data"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("not deleted" in m and "Permission denied" in m for m in warnings)
    stats = uploader.scan_once()
    assert (stats.present, stats.failed) == (1, 0)
    assert tree(root) == []


def test_symlink_loops_and_dangling_links(root: Path, tmp_path: Path) -> None:
    bucket = root / "loop-bucket"
    bucket.mkdir()
    (bucket / "self").symlink_to(bucket)
    (bucket / "a").symlink_to(bucket / "b")
    (bucket / "b").symlink_to(bucket / "a")
    (bucket / "dangling").symlink_to(tmp_path / "nowhere")
    write(bucket / "real.txt", b"x")
    items = list(scan(root, now_ns=time.time_ns() + 100 * NS, stability=2))
    assert [i.key for i in items if isinstance(i, Candidate)] == ["real.txt"]
    assert len([i for i in items if isinstance(i, Skipped)]) == 4


def test_directories_vanish_and_appear_mid_scan(root: Path) -> None:
    for name in ("a", "b", "c"):
        write(root / "mid-bucket" / name / "f.txt", b"x")
    walk = scan(root, now_ns=time.time_ns() + 100 * NS, stability=2)
    first = next(walk)
    assert isinstance(first, Candidate)
    gone, later = sorted({"a", "b", "c"} - {first.key.split("/")[0]})
    shutil.rmtree(root / "mid-bucket" / gone)  # vanishes before the walk reaches it
    write(root / "mid-bucket" / later / "g.txt", b"y")  # appears where the walk has yet to go
    write(root / "mid-bucket" / "new" / "h.txt", b"z")  # appears where it has already looked
    rest = list(walk)  # no exception: the vanished directory is passed over
    assert sorted(i.key for i in rest if isinstance(i, Candidate)) == [
        f"{later}/f.txt",
        f"{later}/g.txt",
    ]
    assert len(rest) == 2
    again = scan(root, now_ns=time.time_ns() + 100 * NS, stability=2)
    assert "new/h.txt" in [i.key for i in again if isinstance(i, Candidate)]  # the next scan


@pytest.mark.slow
def test_many_files_in_one_directory_stream_without_aws_calls(root: Path) -> None:
    directory = root / "wide-bucket" / "d"
    directory.mkdir(parents=True)
    for i in range(20_000):
        (directory / f"{i:05d}").touch()
    started = time.monotonic()
    items = list(scan(root, now_ns=time.time_ns(), stability=3600))
    assert len(items) == 20_000
    assert all(isinstance(i, Skipped) for i in items)
    assert time.monotonic() - started < 10


@pytest.mark.slow
def test_no_credentials_in_logs(root: Path, moto: Moto, aws_cli: str) -> None:
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY"
    write(root / "missing-bucket" / "f.txt", b"x")
    env = {"AWS_SECRET_ACCESS_KEY": secret, "AWS_SESSION_TOKEN": "SESSIONTOKENSECRET"}
    result = run_cli(
        "--once", "-v", "-d", str(root), "--endpoint-url", moto.url, "--aws-cli", aws_cli, env=env
    )
    assert result.returncode == 1
    assert "ERROR" in result.stdout
    for text in (secret, "SESSIONTOKENSECRET"):
        assert text not in result.stdout + result.stderr
