"""The program as a user runs it: flags, environment, exit codes, signals, the lock."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from fake_imds import ImdsState, fake_imds
from helpers import (
    REPO,
    Moto,
    daemon,
    free_port,
    project_version,
    run_cli,
    run_in_process,
    tree,
    write,
)

from awscli_uploader.ec2.spot import seconds_until
from awscli_uploader.local.state import StateDir


def test_help_and_version() -> None:
    helped = run_in_process("--help")
    assert helped.returncode == 0
    shown = " ".join(helped.stdout.split())  # however the terminal's width wrapped it
    for text in (
        "--interval",
        "--directory",
        "--region",
        "--profile",
        "--stability",
        "--once",
        "--dry-run",
        "--endpoint-url",
        "--aws-cli",
        "S3_UPLOAD_INTERVAL",
        "--exclude PATTERN",
        "--bucket-map DIR=BUCKET",
        "--delete-empty-dirs",
        "--metrics-file PATH",
        "--log-format [text|json]",
        "S3_UPLOAD_EXCLUDE",
        "S3_BUCKET_MAP",
        "status",
    ):
        assert text in shown
    status = run_in_process("status", "--help")
    assert status.returncode == 0
    assert "--json" in status.stdout
    assert "takes no lock" in " ".join(status.stdout.split())
    version = run_in_process("--version")
    assert version.returncode == 0
    assert version.stdout == f"awscli-uploader, version {project_version()}\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--interval", "0"], "--interval"),
        (["--stability", "-1"], "--stability"),
        (["--interval", "soon"], "--interval"),
        (["--no-such-flag"], "No such option"),
        (["--log-format", "xml"], "--log-format"),
        (["statsu"], "No such command"),
        (["--lifecycle-hook", "drain"], "--autoscaling-group"),
        (["--data-volume", "/dev/sdf"], "--data-volume (S3_UPLOAD_DATA_VOLUME) needs"),
    ],
)
def test_bad_flags_are_one_line_exit_2(args: list[str], message: str) -> None:
    result = run_in_process(*args)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr
    assert result.stderr.startswith("awscli-uploader: error: ")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        # click names the flag, not the variable it read
        ({"S3_UPLOAD_INTERVAL": "0"}, "--interval"),
        ({"FILE_STABILITY_SECONDS": "soon"}, "--stability"),
        ({"S3_UPLOAD_LOG_FORMAT": "xml"}, "--log-format"),
        ({"S3_UPLOAD_EXCLUDE": "/"}, "S3_UPLOAD_EXCLUDE"),
        ({"S3_BUCKET_MAP": "no-equals-sign"}, "S3_BUCKET_MAP"),
        ({"S3_UPLOAD_DATA_VOLUME": "/dev/sdf"}, "--lifecycle-hook and --autoscaling-group"),
    ],
)
def test_bad_environment_is_one_line_exit_2(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    result = run_in_process("--once", "-d", str(tmp_path), env=env)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr


def test_root_problems_exit_2(tmp_path: Path) -> None:
    missing = run_in_process("--once", "-d", str(tmp_path / "missing"))
    assert missing.returncode == 2
    assert "does not exist" in missing.stderr
    afile = write(tmp_path / "file", b"")
    notdir = run_in_process("-d", str(afile))
    assert notdir.returncode == 2
    assert "not a directory" in notdir.stderr


def test_missing_cli_exits_3(root: Path) -> None:
    result = run_in_process("--once", "-d", str(root), "--aws-cli", "/nonexistent/aws")
    assert result.returncode == 3
    assert "install AWS CLI" in result.stderr
    through_env = run_in_process("--once", "-d", str(root), env={"AWS_CLI": "/nonexistent/aws"})
    assert through_env.returncode == 3


def test_no_credentials_exit_4(root: Path, moto: Moto, aws_cli: str) -> None:
    env: dict[str, str | None] = {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None}
    result = run_in_process(
        "--once", "-d", str(root), "--endpoint-url", moto.url, "--aws-cli", aws_cli, env=env
    )
    assert result.returncode == 4
    assert "aws configure" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unreachable_endpoint_exit_4(
    root: Path, aws_cli: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")  # v1's 5 attempts back off for about 8 s
    url = f"http://127.0.0.1:{free_port()}"
    result = run_in_process("--once", "-d", str(root), "--endpoint-url", url, "--aws-cli", aws_cli)
    assert result.returncode == 4
    assert "unreachable" in result.stderr


@pytest.mark.slow
def test_once_with_environment_variables(root: Path, moto: Moto) -> None:
    moto.create_bucket("env-bucket")
    write(root / "env-bucket" / "a.txt", b"a")
    env = {
        "S3_ROOT_DIR": str(root),
        "S3_ENDPOINT_URL": moto.url,
        "FILE_STABILITY_SECONDS": "1",
        "AWS_REGION": "eu-west-1",
    }
    result = run_in_process("--once", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert moto.keys("env-bucket") == ["a.txt"]
    assert "uploaded 1 " in result.stdout


def test_daemon_waits_for_root_uploads_and_stops_on_sigterm(
    tmp_path: Path, moto: Moto, one_cli: str
) -> None:
    """The daemon's loop, above the seam: with one CLI (its calls run with both elsewhere)."""
    moto.create_bucket("late-bucket")
    root = tmp_path / "later"
    args = ["-d", str(root), "-i", "1", "-s", "0", "--endpoint-url", moto.url, "--aws-cli", one_cli]
    with daemon(tmp_path, *args) as run:
        run.wait_for("does not exist yet")
        write(root / "late-bucket" / "x.txt", b"x")
        run.wait_for("uploaded 1 ")
        assert tree(root) == []
        run.proc.send_signal(signal.SIGTERM)
        assert run.proc.wait(30) == 0
        assert "stopped" in run.output()


@pytest.mark.slow
def test_second_daemon_on_same_root_refused(tmp_path: Path, moto: Moto) -> None:
    root = tmp_path / "root"
    root.mkdir()
    alias = tmp_path / "alias"
    alias.symlink_to(root)
    common = ["-i", "60", "--endpoint-url", moto.url]
    with daemon(tmp_path, "-d", str(root), *common) as first:
        first.wait_for("watching")
        second = run_cli("-d", str(alias), *common)
        assert second.returncode == 5
        assert f"pid {first.proc.pid}" in second.stderr
        assert "AWS access" not in second.stdout + second.stderr  # refused before any aws call
        relative = run_cli("-d", os.path.relpath(root, REPO), *common)
        assert relative.returncode == 5
        first.proc.kill()
        first.proc.wait()
    # a lock left by a killed daemon does not block the next one
    again = run_cli("--once", "-d", str(root), *common)
    assert again.returncode == 0, again.stderr


def test_ec2_with_bad_credentials_keeps_running(tmp_path: Path, moto: Moto, root: Path) -> None:
    state = ImdsState()
    with fake_imds(state) as url:
        env = {
            "AWS_EC2_METADATA_DISABLED": "false",
            "AWS_EC2_METADATA_SERVICE_ENDPOINT": url,
            "AWS_ACCESS_KEY_ID": "",
            "AWS_SECRET_ACCESS_KEY": "",
        }
        with daemon(
            tmp_path, "-d", str(root), "-i", "1", "--endpoint-url", moto.url, env=env
        ) as run:
            run.wait_for("going on, uploads retry")
            run.wait_for("scan:")
            assert run.proc.poll() is None
            run.proc.send_signal(signal.SIGTERM)
            assert run.proc.wait(30) == 0


@pytest.mark.slow
def test_spot_notice_triggers_an_immediate_scan(tmp_path: Path, moto: Moto, root: Path) -> None:
    moto.create_bucket("spot-bucket")
    state = ImdsState()
    with fake_imds(state) as url:
        env = {"AWS_EC2_METADATA_DISABLED": "false", "AWS_EC2_METADATA_SERVICE_ENDPOINT": url}
        args = ["-d", str(root), "-i", "600", "-s", "0", "--endpoint-url", moto.url]
        with daemon(tmp_path, *args, env=env) as run:
            run.wait_for("EC2 instance i-0123456789abcdef0")
            run.wait_for("scan:")
            write(root / "spot-bucket" / "result.png", b"result")
            state.spot_action = {"action": "terminate", "time": "2099-01-01T00:00:00Z"}
            run.wait_for("spot interruption notice", timeout=20)
            run.wait_for("uploaded 1 ", timeout=30)
            assert moto.get("spot-bucket", "result.png") == b"result"
            run.proc.send_signal(signal.SIGTERM)
            assert run.proc.wait(30) == 0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("2026-11-24T00:02:00Z", 120.0), ("2026-11-24T00:00:30+00:00", 30.0), ("garbage", 99.0)],
)
def test_seconds_until(text: str, seconds: float) -> None:
    from datetime import datetime, timezone

    now = datetime(2026, 11, 24, tzinfo=timezone.utc)
    assert seconds_until(text, default=99.0, now=now) == seconds


def test_state_directory_others_can_write_is_refused(root: Path, moto: Moto) -> None:
    state = StateDir(root)
    state.path.mkdir()
    state.path.chmod(0o777)
    result = run_in_process("--once", "-d", str(root), "--endpoint-url", moto.url)
    assert result.returncode == 2
    assert "writable by others" in result.stderr
    assert not state.lock_file.exists()
