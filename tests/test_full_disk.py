"""A full disk, and files the daemon may not read: it drains what it can and never stops.

Real filesystems: a tiny tmpfs out of inodes (needs root to mount), and a file of
another user under a daemon without CAP_DAC_OVERRIDE.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import IN_CI, REPO, Moto, tree, write

from awscli_uploader.local.state import StateDir

NO_DAC = (
    "setpriv",
    "--inh-caps=-dac_override,-dac_read_search",
    "--bounding-set=-dac_override,-dac_read_search",
)


@pytest.fixture
def full_fs(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs with few inodes, mounted at a fresh directory; unmounted after."""
    mount = tmp_path / "fs"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m,nr_inodes=6", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if made.returncode != 0:
        if IN_CI:
            pytest.fail(f"cannot mount a tmpfs: {made.stderr.strip()}")
        pytest.skip(f"cannot mount a tmpfs (needs root): {made.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(directory: Path) -> list[str]:
    """Files in `directory` until the filesystem has no inode left; their names."""
    directory.mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    for n in range(100):
        try:
            write(directory / f"f{n}.txt", f"file {n}".encode())
        except OSError:
            with contextlib.suppress(OSError):
                (directory / f"f{n}.txt").unlink()
            return names
        names.append(f"f{n}.txt")
    raise AssertionError("the filesystem never filled up")


def _once(root: Path, moto: Moto, aws_cli: str, *prefix: str) -> subprocess.CompletedProcess[str]:
    args = ["--once", "-d", str(root), "--endpoint-url", moto.url, "--aws-cli", aws_cli]
    return subprocess.run(
        [*prefix, sys.executable, "-m", "awscli_uploader", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )


@pytest.mark.slow
def test_a_first_start_on_a_disk_out_of_inodes_drains_it(
    full_fs: Path, moto: Moto, one_cli: str
) -> None:
    moto.create_bucket("full-bucket")
    names = _fill(full_fs / "full-bucket")
    result = _once(full_fs, moto, one_cli)
    assert result.returncode == 0, result.stderr
    assert "No space left on device; going on without it" in result.stdout
    assert "uploading" in result.stdout and "from where they are, unpinned" in result.stdout
    assert sorted(moto.keys("full-bucket")) == sorted(names)
    assert tree(full_fs) == []


def test_no_room_for_staging_uploads_without_it(full_fs: Path, moto: Moto, one_cli: str) -> None:
    StateDir(full_fs).path.mkdir(mode=0o700)  # a daemon ran here before
    moto.create_bucket("full-bucket")
    names = _fill(full_fs / "full-bucket")
    result = _once(full_fs, moto, one_cli)
    assert result.returncode == 0, result.stderr
    assert "s3://full-bucket: cannot stage (No space left on device)" in result.stdout
    assert sorted(moto.keys("full-bucket")) == sorted(names)
    assert tree(full_fs) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop CAP_DAC_OVERRIDE")
def test_a_file_it_may_not_read_is_a_failure_that_says_what_to_do(
    root: Path, moto: Moto, aws_cli: str
) -> None:
    moto.create_bucket("mixed-bucket")
    write(root / "mixed-bucket" / "ok.txt", b"readable")
    secret = write(root / "mixed-bucket" / "theirs.txt", b"not for the daemon")
    os.chown(secret, 65534, 65534)
    secret.chmod(0o600)
    result = _once(root, moto, aws_cli, *NO_DAC)
    assert result.returncode == 1, result.stderr
    assert "theirs.txt: permission denied" in result.stdout
    assert "let it read the files" in result.stdout
    assert moto.keys("mixed-bucket") == ["ok.txt"]
    assert tree(root) == ["mixed-bucket/theirs.txt"]
