"""The shell scripts: start, refuse a duplicate, stop; never kill what isn't the daemon."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from helpers import REPO, Moto, tree, write

SCRIPTS = REPO / "scripts"


def _run(script: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPTS / script), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
        cwd="/",  # works from any working directory
    )


@pytest.fixture
def script_env(tmp_path: Path, moto: Moto, root: Path) -> dict[str, str]:
    return {
        "AWSCLI_UPLOADER_RUN_DIR": str(tmp_path / "run"),
        "S3_ROOT_DIR": str(root),
        "S3_ENDPOINT_URL": moto.url,
        "S3_UPLOAD_INTERVAL": "1",
        "FILE_STABILITY_SECONDS": "0",
        "AWSCLI_UPLOADER_STOP_TIMEOUT": "20",
    }


def _pid(env: dict[str, str]) -> int:
    return int((Path(env["AWSCLI_UPLOADER_RUN_DIR"]) / "daemon.pid").read_text().split()[0])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in _state(pid)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].split()[0]
    except (OSError, IndexError):
        return "Z"


def test_run_refuse_duplicate_and_kill(script_env: dict[str, str], moto: Moto, root: Path) -> None:
    moto.create_bucket("script-bucket")
    started = _run("local_run.sh", script_env)
    assert started.returncode == 0, started.stderr
    pid = _pid(script_env)
    try:
        duplicate = _run("local_run.sh", script_env)
        assert duplicate.returncode == 1
        assert "already running" in duplicate.stderr
        write(root / "script-bucket" / "f.txt", b"via script")
        deadline = time.monotonic() + 30
        while tree(root) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert moto.get("script-bucket", "f.txt") == b"via script"
    finally:
        stopped = _run("local_kill.sh", script_env)
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped" in stopped.stdout
    assert not _alive(pid)
    assert not (Path(script_env["AWSCLI_UPLOADER_RUN_DIR"]) / "daemon.pid").exists()
    log = (Path(script_env["AWSCLI_UPLOADER_RUN_DIR"]) / "daemon.log").read_text()
    assert "SIGTERM received" in log


def test_kill_with_stale_or_foreign_pid_file(script_env: dict[str, str]) -> None:
    run_dir = Path(script_env["AWSCLI_UPLOADER_RUN_DIR"])
    run_dir.mkdir()
    pid_file = run_dir / "daemon.pid"
    assert "not running" in _run("local_kill.sh", script_env).stdout
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        start = subprocess.run(
            ["ps", "-o", "lstart=", "-p", str(bystander.pid)], capture_output=True, text=True
        ).stdout.strip()
        pid_file.write_text(f"{bystander.pid}\n{start}\n")
        result = _run("local_kill.sh", script_env)
        assert result.returncode == 0
        assert "stale" in result.stdout
        assert bystander.poll() is None  # a process that isn't the daemon survives
        assert not pid_file.exists()
        pid_file.write_text("999999\nnever\n")
        assert "stale" in _run("local_kill.sh", script_env).stdout
    finally:
        bystander.kill()
        bystander.wait()


def test_run_reports_a_daemon_that_dies_at_start(
    script_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**script_env, "AWS_CLI": str(tmp_path / "no-aws-here")}
    result = _run("local_run.sh", env)
    assert result.returncode == 1
    assert "exited at start" in result.stderr
    assert "install AWS CLI" in result.stderr


def test_daemon_script_passes_arguments(script_env: dict[str, str], moto: Moto, root: Path) -> None:
    moto.create_bucket("script-bucket")
    write(root / "script-bucket" / "once.txt", b"once")
    result = _run("s3_upload_daemon.sh", script_env, "--once", "--stability", "1")
    assert result.returncode == 0, result.stderr
    assert moto.keys("script-bucket") == ["once.txt"]


@pytest.mark.skipif(
    shutil.which("shellcheck") is None and os.environ.get("CI") != "true",
    reason="shellcheck not installed",
)
def test_scripts_pass_shellcheck() -> None:
    scripts = sorted(str(p) for p in SCRIPTS.glob("*.sh"))
    result = subprocess.run(
        ["shellcheck", "-x", "-S", "warning", *scripts], capture_output=True, text=True, cwd=REPO
    )
    assert result.returncode == 0, result.stdout
