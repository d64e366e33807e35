"""The settle phase: the delete that checks identity."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import pytest
from helpers import Moto, make_uploader, tree, write

from awscli_uploader.local.state import Trash, aside
from awscli_uploader.model import Identity
from awscli_uploader.scan import settle
from awscli_uploader.scan.settle import delete_if_unchanged


def test_delete_only_the_file_that_was_verified(tmp_path: Path) -> None:
    path = write(tmp_path / "f", b"v1")
    identity = Identity.of(os.lstat(path))
    time.sleep(0.01)
    path.write_bytes(b"v2")
    assert delete_if_unchanged(path, identity) is not None
    assert path.read_bytes() == b"v2"
    replacement = write(tmp_path / "g", b"v1")
    identity = Identity.of(os.lstat(replacement))
    os.replace(write(tmp_path / "h", b"v1"), replacement)
    assert delete_if_unchanged(replacement, identity) is not None
    assert replacement.exists()
    assert delete_if_unchanged(replacement, Identity.of(os.lstat(replacement))) is None
    assert not replacement.exists()


def test_a_trash_on_another_filesystem_sets_the_file_aside_never_unlinks_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EXDEV (the bucket directory is a mount of its own): the file is renamed beside
    itself, the renamed inode checked, then unlinked; no lstat-then-unlink by name."""
    root = tmp_path / "root"
    trash = Trash(root, tmp_path / "state" / "trash")
    path = write(root / "b" / "f.txt", b"verified")
    identity = Identity.of(os.lstat(path))
    real_rename = os.rename
    renamed: list[str] = []

    def cross_device(src: object, dst: object) -> None:
        if str(dst).startswith(str(trash.dir)):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        renamed.append(str(dst))
        real_rename(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(settle.os, "rename", cross_device)
    assert delete_if_unchanged(path, identity, trash) is None
    assert renamed == [str(aside(path))]
    assert not path.exists() and not aside(path).exists()


def test_a_file_a_killed_run_set_aside_is_put_back_and_never_uploaded_as_such(
    root: Path, moto: Moto, one_cli: str
) -> None:
    moto.create_bucket("aside-bucket")
    moto.put("aside-bucket", "run/f.txt", b"verified")
    write(aside(root / "aside-bucket" / "run" / "f.txt"), b"verified")
    uploader = make_uploader(root, moto, one_cli)
    uploader.scan_once()  # puts it back (and looks it up before any upload)
    assert tree(root) == ["aside-bucket/run/f.txt"]
    stats = uploader.scan_once()
    assert (stats.present, stats.uploaded, stats.failed) == (1, 0, 0)
    assert moto.keys("aside-bucket") == ["run/f.txt"]
    assert tree(root) == []
