"""The settle phase: the delete that checks identity."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import pytest
from helpers import write

from awscli_uploader.local.state import StateDir, aside, put_back, rename_noreplace
from awscli_uploader.model import Identity
from awscli_uploader.scan import settle
from awscli_uploader.scan.settle import delete_if_unchanged


def test_delete_only_the_file_that_was_verified(tmp_path: Path) -> None:
    path = write(tmp_path / "f", b"v1")
    identity = Identity.of(os.lstat(path))
    time.sleep(0.01)
    path.write_bytes(b"v2")
    assert delete_if_unchanged(path, identity, StateDir(tmp_path).trash) is not None
    assert path.read_bytes() == b"v2"
    replacement = write(tmp_path / "g", b"v1")
    identity = Identity.of(os.lstat(replacement))
    os.replace(write(tmp_path / "h", b"v1"), replacement)
    assert delete_if_unchanged(replacement, identity, StateDir(tmp_path).trash) is not None
    assert replacement.exists()
    assert (
        delete_if_unchanged(
            replacement, Identity.of(os.lstat(replacement)), StateDir(tmp_path).trash
        )
        is None
    )
    assert not replacement.exists()


def test_a_trash_on_another_filesystem_sets_the_file_aside_never_unlinks_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EXDEV (the bucket directory is a mount of its own): the file is renamed beside
    itself (noted first), the renamed inode checked, then unlinked; never by its name."""
    root = tmp_path / "root"
    trash = StateDir(root).trash
    path = write(root / "b" / "f.txt", b"verified")
    identity = Identity.of(os.lstat(path))
    real_rename = rename_noreplace
    renamed: list[Path] = []

    def cross_device(src: Path, dst: Path) -> None:
        if str(dst).startswith(str(trash.dir)):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        assert list(trash.notes.glob("*.json")), "set aside before it was noted"
        renamed.append(dst)
        real_rename(src, dst)

    monkeypatch.setattr(settle, "rename_noreplace", cross_device)
    assert delete_if_unchanged(path, identity, trash) is None
    assert renamed == [aside(path)]
    assert not path.exists() and not aside(path).exists()
    assert list(trash.notes.glob("*.json")) == []


def test_only_a_noted_file_set_aside_is_put_back(tmp_path: Path) -> None:
    """A killed run's aside file comes back under its name; a user's file that only looks
    like one is nobody's business."""
    root = tmp_path / "root"
    trash = StateDir(root).trash
    mine = write(aside(root / "b" / "run" / "f.txt"), b"verified")
    info = os.lstat(mine)
    assert trash.note_aside(root / "b" / "run" / "f.txt", info.st_dev, info.st_ino) is not None
    theirs = write(aside(root / "b" / "report"), b"a user's file")
    restored, problems = trash.restore()
    assert (restored, problems) == ([root / "b" / "run" / "f.txt"], [])
    assert (root / "b" / "run" / "f.txt").read_bytes() == b"verified"
    assert theirs.read_bytes() == b"a user's file"
    assert list(trash.notes.glob("*.json")) == []


def test_the_trash_never_replaces_what_waits_there(tmp_path: Path) -> None:
    """A file stranded in the trash (its put-back refused) is never overwritten by the
    next delete of the same path: that file is kept instead."""
    root = tmp_path / "root"
    trash = StateDir(root).trash
    stranded = write(trash.place(root / "b" / "f.txt"), b"never uploaded")
    path = write(root / "b" / "f.txt", b"verified")
    refusal = delete_if_unchanged(path, Identity.of(os.lstat(path)), trash)
    assert refusal is not None and "waits in the trash" in refusal
    assert (stranded.read_bytes(), path.read_bytes()) == (b"never uploaded", b"verified")


def test_put_back_after_a_kill_between_link_and_unlink_drops_the_extra_name(
    tmp_path: Path,
) -> None:
    path = write(tmp_path / "f.txt", b"data")
    moved = tmp_path / "trash-f.txt"
    os.link(path, moved)
    assert put_back(moved, path) == path
    assert not moved.exists() and path.read_bytes() == b"data"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]
