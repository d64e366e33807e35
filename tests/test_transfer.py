"""The transfer phase: include patterns, staging, and files that can't be linked."""

from __future__ import annotations

import errno
import fnmatch
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from helpers import Fault, Moto, os_fault, recorded_uploader, tree, write

from awscli_uploader.local.filters import parse_excludes
from awscli_uploader.model import Candidate
from awscli_uploader.s3.awscli import exact_filters
from awscli_uploader.scan import transfer
from awscli_uploader.scan.transfer import filter_groups, stage

ODD = ["a[1].txt", "b*.txt", "?.txt", "plain.txt", "dir/[x]/y?.bin", "sp ace#%.txt"]


@pytest.mark.parametrize("root", ["/data/s3/b-1", "/data/run[3]/s3/b-1", "/d/*?/b-1"])
@pytest.mark.parametrize("key", ODD)
def test_the_filters_upload_exactly_the_key_under_any_root(root: str, key: str) -> None:
    """Evaluated as the CLI does: each pattern joined to the source directory with
    os.path.join, fnmatch against the file's path, the last matching filter wins."""
    filters = [f.split("=", 1) for f in exact_filters(root, [key])]
    patterns = [(kind, os.path.join(root, pattern)) for kind, pattern in filters]

    def uploaded(name: str) -> bool:
        verdict = True
        for kind, pattern in patterns:
            if fnmatch.fnmatch(f"{root}/{name}", pattern):
                verdict = kind == "--include"
        return verdict

    others = [k for k in ODD if k != key] + ["a1.txt", "bx.txt", "x.txt", "dir/x/yz.bin"]
    assert uploaded(key)
    assert [k for k in others if uploaded(k)] == []


def test_filter_groups_stay_under_the_command_line_limit() -> None:
    keys = [f"run-{n:05d}/" + "x" * 200 for n in range(1000)]
    groups = filter_groups(keys, root_chars=100)
    assert len(groups) > 1
    assert [k for g in groups for k in g] == keys
    assert all(sum(100 + len(k) for k in g) <= transfer.MAX_FILTER_CHARS for g in groups)


def _candidate(root: Path, key: str) -> Candidate:
    path = write(root / "b-1" / key, key.encode())
    return Candidate(path, "b-1", key, path.stat().st_size, 0)


def test_stage_pins_each_file_by_a_hard_link(root: Path) -> None:
    files = [_candidate(root, "x/1.txt"), _candidate(root, "2.txt")]
    result = stage(files, root / ".state" / "staging")
    staged, direct, problem = result.staged, result.direct, result.problem
    assert (direct, problem) == ([], None)
    for item, link in staged:
        assert os.stat(link).st_ino == os.stat(item.path).st_ino


def test_no_room_for_links_leaves_the_rest_direct(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = [_candidate(root, f"{n}.txt") for n in range(3)]
    linked: list[Path] = []

    def full_after_one(source: Path) -> OSError | None:
        linked.append(source)
        return OSError(errno.ENOSPC, "No space left on device") if len(linked) > 1 else None

    with os_fault(full_after_one, "link"):
        result = stage(files, root / ".state" / "staging")
    staged, direct, problem = result.staged, result.direct, result.problem
    assert [i.key for i, _ in staged] == ["0.txt"]
    assert [i.key for i in direct] == ["1.txt", "2.txt"]
    assert problem == "No space left on device"


@pytest.mark.parametrize("code", [errno.EOPNOTSUPP, errno.ENOSYS, errno.EIO])
def test_an_unexpected_errno_fails_that_file_alone(
    root: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    """FUSE and CIFS mounts answer link() with errors of their own: the file fails with
    its reason, the rest of the batch is staged, nothing raises out of the scan."""
    files = [_candidate(root, f"{n}.txt") for n in range(3)]

    def odd_for_one(source: Path) -> OSError | None:
        return OSError(code, os.strerror(code)) if source.name == "1.txt" else None

    with os_fault(odd_for_one, "link"):
        result = stage(files, root / ".state" / "staging")
    assert [i.key for i, _ in result.staged] == ["0.txt", "2.txt"]
    assert [(i.key, why) for i, why in result.failed] == [
        ("1.txt", f"cannot stage: {os.strerror(code)}")
    ]
    assert (result.direct, result.problem) == ([], None)


def test_unlinkable_files_go_in_one_batch_from_their_directory(
    root: Path, moto: Moto, aws_cli: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Protected hard links (another owner's files) refuse the link: files too big to copy
    go in one `cp --recursive` with include lists, odd names too, proven by the listing."""
    monkeypatch.setattr(transfer, "COPY_MAX_BYTES", 0)  # too big to copy
    moto.create_bucket("b-1")
    for key in ODD:
        write(root / "b-1" / key, f"bytes of {key}".encode())
    write(root / "b-1" / ".hidden.txt", b"excluded: not in the batch")
    uploader, cli = recorded_uploader(root, moto, aws_cli, excludes=parse_excludes([".*"]))
    with os_fault(_refused_below(root / "b-1"), "link"):
        stats = uploader.scan_once()
    assert (stats.uploaded, stats.failed) == (len(ODD), 0)
    assert sorted(moto.keys("b-1")) == sorted(ODD)
    for key in ODD:
        assert moto.get("b-1", key) == f"bytes of {key}".encode()
    assert tree(root) == ["b-1/.hidden.txt"]
    (copy,) = [c for c in cli.calls if c[:2] == ["s3", "cp"]]
    assert "--recursive" in copy and any(a.startswith("--include=") for a in copy)
    assert copy[-2:] == [str(root / "b-1"), "s3://b-1/"]  # from where they are, not staged


def _refused_below(directory: Path) -> Fault:
    """Links to the files below `directory` are refused, as protected hard links refuse
    another owner's files."""

    def refused(source: Path) -> OSError | None:
        if directory in source.parents:
            return PermissionError(errno.EPERM, "Operation not permitted")
        return None

    return refused


def test_small_unlinkable_files_are_staged_by_copy(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy pins the bytes; the identity kept is the original's, taken while copied."""
    monkeypatch.setattr(transfer, "COPY_BUDGET", 12)
    files = [_candidate(root, "a/small.txt"), _candidate(root, "b.txt"), _candidate(root, "c.txt")]
    with os_fault(_refused_below(root), "link"):
        result = stage(files, root / ".state" / "staging")
    assert [i.key for i, _ in result.staged] == ["a/small.txt"]  # 11 bytes of a budget of 12
    assert [i.key for i in result.direct] == ["b.txt", "c.txt"]
    ((item, copy),) = result.staged
    assert copy.read_bytes() == b"a/small.txt"
    assert os.stat(copy).st_ino != os.stat(item.path).st_ino
    assert result.copied[copy].ino == os.stat(item.path).st_ino


def test_a_file_that_changes_while_copied_is_not_staged(root: Path) -> None:
    item = _candidate(root, "growing.log")
    real_copy = shutil.copyfileobj

    def appended_meanwhile(src: Any, dst: Any, length: int = 0) -> None:
        real_copy(src, dst, length)
        with item.path.open("ab") as writer:
            writer.write(b"more")

    with os_fault(_refused_below(root), "link"), pytest.MonkeyPatch.context() as patch:
        patch.setattr(shutil, "copyfileobj", appended_meanwhile)  # only while staging
        result = stage([item], root / ".state" / "staging")
    assert (result.staged, result.direct, result.copied) == ([], [], {})
    assert list((root / ".state" / "staging").iterdir()) == []  # the torn copy is gone


def test_copied_files_go_in_the_staged_batch_and_the_originals_are_deleted(
    root: Path, moto: Moto, one_cli: str
) -> None:
    moto.create_bucket("b-1")
    for key in ODD:
        write(root / "b-1" / key, f"bytes of {key}".encode())
    links: list[int] = []

    def at_upload(args: list[str]) -> None:
        if args[:2] == ["s3", "cp"]:  # staged by now: by copy, no second link to an original
            links.extend(os.stat(root / "b-1" / key).st_nlink for key in ODD)

    uploader, cli = recorded_uploader(root, moto, one_cli, answer=at_upload)
    with os_fault(_refused_below(root / "b-1"), "link"):
        stats = uploader.scan_once()
    assert links == [1] * len(ODD)
    assert (stats.uploaded, stats.failed) == (len(ODD), 0)
    for key in ODD:
        assert moto.get("b-1", key) == f"bytes of {key}".encode()
    assert tree(root) == []
    (copy,) = [c for c in cli.calls if c[:2] == ["s3", "cp"]]
    assert not any(a.startswith("--include") for a in copy) and "staging" in " ".join(copy)


def test_a_root_with_glob_characters_uploads_only_the_batch(
    tmp_path: Path, moto: Moto, aws_cli: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under `run[3]/` the CLI's own joining of root and patterns once matched nothing, so
    nothing was excluded: an excluded file and one still being written went up too."""
    root = tmp_path / "run[3]" / "s3"
    monkeypatch.setattr(transfer, "COPY_MAX_BYTES", 0)  # too big to copy: from where they are
    moto.create_bucket("b-1")
    write(root / "b-1" / "ready.txt", b"ready")
    write(root / "b-1" / "x.tmp", b"excluded")
    uploader, _ = recorded_uploader(root, moto, aws_cli, excludes=parse_excludes(["*.tmp"]))
    with open(root / "b-1" / "fresh.txt", "wb") as writer, os_fault(_refused_below(root), "link"):
        writer.write(b"still being")  # still being written
        stats = uploader.scan_once()
    assert (stats.uploaded, stats.failed) == (1, 0)
    assert moto.keys("b-1") == ["ready.txt"]
    assert tree(root) == ["b-1/fresh.txt", "b-1/x.tmp"]
