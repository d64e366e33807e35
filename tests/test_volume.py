"""Whether the root's volume is empty enough to be deleted with its instance: every file on
it counts (excluded or not, in a bucket directory or not), but the state directory's
disposable parts; no symlink is followed, no other filesystem entered."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO, write

from awscli_uploader.local.state import ASIDE, StateDir
from awscli_uploader.local.volume import left_on_volume, on_volume

STATE = ".awscli-uploader"


@pytest.mark.parametrize(
    ("files", "blocker"),
    [
        ([], None),
        ([f"{STATE}/lock", f"{STATE}/last-scan.json", f"{STATE}/opaque-buckets"], None),
        ([f"{STATE}/terminating", f"{STATE}/.last-scan.json.k2x9.tmp"], None),
        ([f"{STATE}/staging/b-1-4242/d/k.bin", f"{STATE}/staging/b-1-4242.read"], None),
        ([f"{STATE}/uploads/4242-0.json", f"{STATE}/aws/4242-1.credentials"], None),
        (["b-1/partial.tmp"], "b-1/partial.tmp"),  # excluded or not: on the volume
        (["notes.txt"], "notes.txt"),  # directly under the root
        ([f"{STATE}/trash/b-1/d/proven.txt"], "proven.txt"),  # could not be put back
        ([f"{STATE}/aside/4242-0.json"], "4242-0.json"),  # a file set aside, not put back
        ([f"b-1/result.png{ASIDE}"], f"result.png{ASIDE}"),
        ([f"{STATE}/unknown"], "unknown"),  # a name the layout does not spell
        ([f"{STATE}/.trash.k2x9.tmp"], ".trash.k2x9.tmp"),
    ],
)
def test_what_keeps_the_volume(root: Path, files: list[str], blocker: str | None) -> None:
    for name in files:
        write(root / name, b"x")
    (root / "b-2" / "emptied" / "deep").mkdir(parents=True)  # empty directories never count
    found = on_volume(StateDir(root))
    if blocker is None:
        assert found is None
    else:
        assert found is not None and found.endswith(f"{blocker} is on it")


def test_a_symlink_is_on_the_volume_and_never_followed(root: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    write(elsewhere / "big.bin", b"not on this volume")
    (root / "b-1").mkdir()
    (root / "b-1" / "link").symlink_to(elsewhere, target_is_directory=True)
    found = on_volume(StateDir(root))
    assert found is not None and found.endswith("b-1/link is on it")


def test_a_missing_root_is_not_proven_empty(tmp_path: Path) -> None:
    found = on_volume(StateDir(tmp_path / "gone"))
    assert found is not None and "can't be read" in found


def test_a_root_that_is_no_mount_point_is_not_proven_empty(root: Path) -> None:
    """The volume failed to mount, or was unmounted: the root is a directory on another
    disk, empty here, and the volume's own files can't be seen."""
    found = left_on_volume(StateDir(root))
    assert found is not None and found.endswith(
        "is not a mount point: the volume's files can't be seen"
    )


MOUNTED = """
import os, subprocess, sys
from pathlib import Path
from awscli_uploader.local.state import StateDir
from awscli_uploader.local.volume import left_on_volume
root = Path(sys.argv[1])
mount = ["mount", "-t", "tmpfs", "none"]
subprocess.run([*mount, str(root)], check=True)  # the data volume at the root
(root / "b-1" / "scratch").mkdir(parents=True)
subprocess.run([*mount, str(root / "b-1" / "scratch")], check=True)
(root / "b-1" / "scratch" / "other.bin").write_bytes(b"on another filesystem")
print(left_on_volume(StateDir(root)))
(root / "b-1" / "kept.bin").write_bytes(b"on the volume")
print(left_on_volume(StateDir(root)))
"""


def test_a_volume_mounted_at_the_root_and_a_mount_below_it(root: Path) -> None:
    """In a user and mount namespace of its own, a tmpfs (the data volume) at the root and
    another at b-1/scratch: the second one's files are not on the volume, so they neither
    keep it nor are walked; a file on the volume keeps it."""
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "-Urm", "true"], check=False).returncode:
        pytest.skip("no unshare with user and mount namespaces here")
    ran = subprocess.run(
        [unshare, "-Urm", sys.executable, "-c", MOUNTED, str(root)],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    assert ran.returncode == 0, ran.stderr
    empty, kept = ran.stdout.splitlines()
    assert empty == "None"
    assert kept.endswith("b-1/kept.bin is on it")
