"""--delete-empty-dirs: only what uploads emptied, below the bucket level, never refilled."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from helpers import Moto, make_uploader, run_cli, tree, write

from awscli_uploader.local.cleanup import removal_chain, remove_emptied_dirs
from awscli_uploader.local.state import StateDir

R = Path("/r")


@pytest.mark.parametrize(
    ("directory", "chain"),
    [
        ("/r/b/x/y", ["/r/b/x/y", "/r/b/x"]),
        ("/r/b/x", ["/r/b/x"]),
        ("/r/b", []),  # the bucket directory itself
        ("/r", []),  # the root
        ("/elsewhere/b/x", []),
        ("/r/../r/b/x", []),
    ],
)
def test_removal_chain(directory: str, chain: list[str]) -> None:
    assert removal_chain(R, Path(directory)) == [Path(p) for p in chain]


def test_removes_emptied_dirs_but_not_refilled_ones(root: Path) -> None:
    for name in ("b/run1/images/deep", "b/run1/logs", "b/run2", "b/kept", "c/x"):
        (root / name).mkdir(parents=True)
    write(root / "b" / "kept" / "new.txt", b"a file that arrived meanwhile")
    removed = remove_emptied_dirs(
        root,
        [
            root / "b/run1/images/deep",
            root / "b/run1/logs",
            root / "b/run2",
            root / "b/kept",
            root / "b",
            root / "c/x",
            root,
        ],
    )
    assert {str(p.relative_to(root)) for p in removed} == {
        "b/run1/images/deep",
        "b/run1/images",
        "b/run1/logs",
        "b/run1",
        "b/run2",
        "c/x",
    }
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*")) == [
        "b",
        "b/kept",
        "b/kept/new.txt",
        "c",
    ]


def test_symlinked_directory_is_not_removed(root: Path, tmp_path: Path) -> None:
    (tmp_path / "target").mkdir()
    (root / "b").mkdir()
    (root / "b" / "link").symlink_to(tmp_path / "target")
    assert remove_emptied_dirs(root, [root / "b" / "link"]) == []
    assert (root / "b" / "link").is_symlink()
    assert (tmp_path / "target").is_dir()


@pytest.mark.slow
def test_per_bucket_tallies(root: Path, moto: Moto, one_cli: str) -> None:
    moto.create_bucket("bucket-one")
    moto.put("bucket-one", "present.txt", b"here")
    write(root / "bucket-one" / "present.txt", b"here")
    write(root / "bucket-one" / "new.txt", b"new!")
    write(root / "missing-bucket" / "kept.txt", b"kept")
    write(root / "bad_name" / "kept.txt", b"kept")
    before = time.time()
    uploader = make_uploader(root, moto, one_cli)
    uploader.suspect([("bucket-one", "present.txt")])  # looked up before any upload
    stats = uploader.scan_once()
    tallies = {
        b: (t.uploaded, t.uploaded_bytes, t.present, t.failed) for b, t in stats.buckets.items()
    }
    assert tallies == {
        "bucket-one": (1, 4, 1, 0),
        "missing-bucket": (0, 0, 0, 1),
        "bad_name": (0, 0, 0, 1),
    }
    assert before <= stats.started <= before + stats.seconds + 1  # when this scan started


@pytest.mark.slow
def test_delete_empty_dirs_through_the_cli(root: Path, moto: Moto, one_cli: str) -> None:
    moto.create_bucket("bucket-one")
    write(root / "bucket-one" / "run1" / "images" / "a.png", b"a")
    write(root / "bucket-one" / "run1" / "logs" / "l.txt", b"l")
    write(root / "bucket-one" / "run2" / "b.png", b"b")
    write(root / "bucket-one" / "run2" / "b.png.part", b"half")
    write(root / "bucket-one" / "top.txt", b"t")
    (root / "bucket-one" / "prepared").mkdir()  # made by the coordinator: not ours to remove
    (root / "empty-bucket").mkdir()
    common = ["--once", "-d", str(root), "--endpoint-url", moto.url, "--aws-cli", one_cli]
    result = run_cli(*common, "--exclude", "*.part", "--delete-empty-dirs")
    assert result.returncode == 0, result.stdout + result.stderr
    assert tree(root) == ["bucket-one/run2/b.png.part"]
    left = {StateDir(root).path, root / "bucket-one", root / "empty-bucket"}
    assert set(root.iterdir()) == left
    assert sorted(p.name for p in (root / "bucket-one").iterdir()) == ["prepared", "run2"]


@pytest.mark.slow
def test_empty_dirs_stay_by_default(root: Path, moto: Moto) -> None:
    moto.create_bucket("bucket-one")
    write(root / "bucket-one" / "run1" / "a.png", b"a")
    result = run_cli("--once", "-d", str(root), "--endpoint-url", moto.url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (root / "bucket-one" / "run1").is_dir()
