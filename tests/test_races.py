"""A file changed while it is uploaded is never deleted in a state S3 does not hold."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from fault_proxy import FaultProxy
from helpers import OLD, Moto, assert_drained, assert_nothing_lost, make_uploader, write

MIB = 1024 * 1024


def _append(path: Path) -> None:
    with open(path, "ab") as handle:
        handle.write(b"appended")


def _rewrite_same_size(path: Path) -> None:
    data = path.read_bytes()
    with open(path, "r+b") as handle:
        handle.write(bytes(b ^ 0xFF for b in data[:16]))


def _truncate(path: Path) -> None:
    os.truncate(path, 10)


def _replace(path: Path) -> None:
    fresh = path.with_name(path.name + ".new")
    fresh.write_bytes(b"a whole new file")
    os.replace(fresh, path)


CHANGES: dict[str, Callable[[Path], None]] = {
    "append": _append,
    "rewrite-in-place": _rewrite_same_size,
    "truncate": _truncate,
    "replace-by-rename": _replace,
}


@pytest.mark.slow
@pytest.mark.parametrize("size", [5000, 9 * MIB], ids=["single-part", "multipart"])
def test_changes_during_upload(
    size: int, root: Path, moto: Moto, proxy: FaultProxy, one_cli: str
) -> None:
    """Each kind of change hits its own file of one batch, in the middle of that file's upload
    (the first PUT of the object, or of its first part), while the others' uploads go on."""
    moto.create_bucket("race-bucket")
    paths = {
        change: write(root / "race-bucket" / "run" / f"{change}.bin", os.urandom(size))
        for change in CHANGES
    }
    changed: dict[str, bytes] = {}

    def during_upload(change: str) -> Callable[[str, str], None]:
        def hook(method: str, url: str) -> None:
            path = paths[change]
            CHANGES[change](path)
            os.utime(path, (OLD, OLD))  # an adversary hides the change from mtime; ctime tells
            changed[change] = path.read_bytes()

        return hook

    for change in CHANGES:
        proxy.add(
            "hook",
            method="PUT",
            path=rf"/race-bucket/run/{change}\.bin",
            times=1,
            hook=during_upload(change),
        )
    # a truncated part leaves a request short of its Content-Length: it ends by read timeout
    uploader = make_uploader(root, moto, one_cli, endpoint=proxy.url, read_timeout=5)
    uploader.scan_once()
    assert sorted(changed) == sorted(CHANGES)
    # the CLI may have read the new bytes after all: then S3 must hold exactly them
    files = {("race-bucket", f"run/{change}.bin"): data for change, data in changed.items()}
    assert_nothing_lost(root, moto, files)
    uploader.scan_once()
    assert_drained(root, moto, files)
