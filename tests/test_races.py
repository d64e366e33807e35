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


@pytest.mark.parametrize("size", [5000, 9 * MIB], ids=["single-part", "multipart"])
@pytest.mark.parametrize("change", sorted(CHANGES))
def test_change_during_upload(
    change: str, size: int, root: Path, moto: Moto, proxy: FaultProxy, aws_cli: str
) -> None:
    moto.create_bucket("race-bucket")
    path = write(root / "race-bucket" / "data.bin", os.urandom(size))

    changed: list[bytes] = []

    def during_upload(method: str, url: str) -> None:
        CHANGES[change](path)
        os.utime(path, (OLD, OLD))  # an adversary hides the change from mtime; ctime still tells
        changed.append(path.read_bytes())

    # the first PUT of the object (or of its first part) changes the file under the CLI
    proxy.add("hook", method="PUT", path=r"/race-bucket/data\.bin", times=1, hook=during_upload)
    # a truncated part leaves a request short of its Content-Length: it ends by read timeout
    uploader = make_uploader(root, moto, aws_cli, endpoint=proxy.url, read_timeout=5)
    uploader.scan_once()
    assert proxy.injected == 1
    # the CLI may have read the new bytes after all: then S3 must hold exactly them
    assert_nothing_lost(root, moto, {("race-bucket", "data.bin"): changed[0]})
    uploader.scan_once()
    assert_drained(root, moto, {("race-bucket", "data.bin"): changed[0]})
