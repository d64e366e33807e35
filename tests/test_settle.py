"""The settle phase: the delete that checks identity."""

from __future__ import annotations

import os
import time
from pathlib import Path

from helpers import write

from awscli_uploader.model import Identity
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
