"""Excludes and the bucket map: the pure rules, and both through the real CLI against moto."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from helpers import Moto, run_in_process, tree, write

from awscli_uploader.config import Config
from awscli_uploader.local.filters import (
    FilterError,
    bucket_for,
    compile_pattern,
    parse_bucket_map,
    parse_excludes,
    split_list,
)
from awscli_uploader.s3.awscli import AwsCli
from awscli_uploader.scan.uploader import Uploader

LOG = logging.getLogger("awscli_uploader.test")
MAP = ["distributed_colony=distributed-colony"]


@pytest.mark.parametrize(
    ("pattern", "rel", "is_dir", "excluded"),
    [
        # no '/': a name at any depth
        ("*.tmp", "b/x.tmp", False, True),
        ("*.tmp", "b/deep/er/x.tmp", False, True),
        ("*.tmp", "b/x.tmp.png", False, False),
        ("*.tmp", "b/dir.tmp/inner.png", False, True),  # a matching directory excludes its tree
        (".*", "b/.hidden", False, True),
        (".*", "b/run/.x.png.AbC123", False, True),  # rsync's temp files
        (".*", "b/.git/objects/ab", False, True),
        (".*", "b/visible.png", False, False),
        ("*.part", "b/video.mp4.part", False, True),
        ("?.log", "b/a.log", False, True),
        ("?.log", "b/ab.log", False, False),
        ("*", "b/anything", False, True),
        ("scratch", "scratch/x.png", False, True),  # a whole top-level directory
        ("scratch", "b/scratch", False, True),
        ("scratch", "b/scratchy", False, False),
        # with '/': anchored at the root
        ("b/tmp/*", "b/tmp/x", False, True),
        ("b/tmp/*", "b/tmp/sub/x", False, True),  # b/tmp/sub matches, so its tree is out
        ("b/tmp/*", "c/b/tmp/x", False, False),
        ("b/*.png", "b/x.png", False, True),
        ("b/*.png", "b/sub/x.png", False, False),  # '*' stays within one name
        ("b/**/*.png", "b/x.png", False, True),  # '**/' also matches nothing
        ("b/**/*.png", "b/sub/deeper/x.png", False, True),
        ("**/cache", "b/x/cache", True, True),
        ("**/cache", "cache", True, True),
        ("b/**", "b/x/y", False, True),
        ("b/**", "c/x", False, False),
        ("/scratch", "scratch/f", False, True),  # leading '/': anchored
        ("/scratch", "b/scratch", False, False),
        # trailing '/': directories only
        ("tmp/", "b/tmp", True, True),
        ("tmp/", "b/tmp", False, False),
        ("tmp/", "b/tmp/f.png", False, True),
        # literal: no classes, escapes or case folding
        ("[bracket].txt", "b/[bracket].txt", False, True),
        ("[bracket].txt", "b/b.txt", False, False),
        ("*.TMP", "b/x.tmp", False, False),
        ("a+b(c).txt", "b/a+b(c).txt", False, True),
    ],
)
def test_exclude_patterns(pattern: str, rel: str, is_dir: bool, excluded: bool) -> None:
    excludes = parse_excludes([pattern])
    assert (excludes.excludes(rel, is_dir=is_dir) is not None) is excluded


def test_match_names_the_pattern_and_ignores_parents() -> None:
    excludes = parse_excludes(["*.part", "tmp/"])
    assert excludes.match("b/x.part", is_dir=False) == "*.part"
    assert excludes.match("b/tmp/x.png", is_dir=False) is None  # the scanner prunes b/tmp
    assert excludes.excludes("b/tmp/x.png") == "tmp/"
    assert not parse_excludes([])
    assert not parse_excludes(["", "  "])


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("/", "empty"),
        ("//", "empty"),
        ("a//b", "empty, '.' or '..' segment"),
        ("../x", "'..' segment"),
        ("b/./x", "'.' or '..'"),
        ("a\0b", "NUL"),
    ],
)
def test_bad_exclude_patterns(pattern: str, message: str) -> None:
    with pytest.raises(FilterError, match=message.replace(".", r"\.").replace("(", r"\(")):
        compile_pattern(pattern)


@pytest.mark.parametrize(
    ("value", "items"),
    [
        ("*.tmp,*.part", ["*.tmp", "*.part"]),
        ("*.tmp\n*.part\n", ["*.tmp", "*.part"]),
        (" *.tmp , ,\n.* ", ["*.tmp", ".*"]),
        ("", []),
    ],
)
def test_split_list(value: str, items: list[str]) -> None:
    assert split_list(value) == items


@pytest.mark.parametrize(
    ("entries", "pairs"),
    [
        (["distributed_colony=distributed-colony"], {"distributed_colony": "distributed-colony"}),
        ([" a_b = a-b ", "logs=simulation-logs"], {"a_b": "a-b", "logs": "simulation-logs"}),
        (["a_b=a-b", "a_b=a-b"], {"a_b": "a-b"}),
        ([], {}),
    ],
)
def test_bucket_map(entries: list[str], pairs: dict[str, str]) -> None:
    parsed = parse_bucket_map(entries)
    assert dict(parsed.pairs) == pairs
    for directory, bucket in pairs.items():
        assert parsed.get(directory) == bucket
        assert parsed.source_for(bucket) == directory


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (["distributed_colony"], "is not DIR=BUCKET"),
        (["=bucket"], "is not DIR=BUCKET"),
        (["dir="], "is not DIR=BUCKET"),
        (["a/b=bucket"], "one directory directly under the root"),
        (["..=bucket"], "one directory directly under the root"),
        (["a_b=Bad_Bucket"], "is not a valid bucket"),
        (["a_b=ab"], "is not a valid bucket"),
        (["a_b=x-1", "a_b=x-2"], "mapped to both"),
        (["a_b=x-1", "c_d=x-1"], "both map to 'x-1'"),
    ],
)
def test_bad_bucket_maps(entries: list[str], message: str) -> None:
    with pytest.raises(FilterError, match=message):
        parse_bucket_map(entries)


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--exclude", "../x"], {}, "--exclude or S3_UPLOAD_EXCLUDE"),
        ([], {"S3_UPLOAD_EXCLUDE": "*.tmp,/"}, "is empty"),
        (["--bucket-map", "distributed_colony"], {}, "is not DIR=BUCKET"),
        (["--bucket-map", "a_b=Not_Valid"], {}, "is not a valid bucket"),
        ([], {"S3_BUCKET_MAP": "a_b=x-1\nc_d=x-1"}, "both map to"),
    ],
)
def test_bad_filters_exit_2_with_one_line(
    root: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    result = run_in_process("--once", "-d", str(root), *args, env=env)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr
    assert result.stderr.startswith("awscli-uploader: error: ")


def _writer_tree(root: Path) -> None:
    write(root / "distributed_colony" / "images_shots" / "frame 0001.png", b"frame 1")
    write(root / "distributed_colony" / "images_shots" / "frame 0002.png.part", b"half")
    write(root / "distributed_colony" / "data" / ".state.bin.XyZ12", b"rsync temp")
    write(root / "distributed_colony" / ".cache" / "index", b"cache")
    write(root / "simulation-logs" / "coordinator.log", b"log")
    write(root / "simulation-logs" / "tmp" / "scratch.bin", b"scratch")
    write(root / ".DS_Store", b"finder")


@pytest.mark.slow
def test_excludes_and_bucket_map_through_the_cli(root: Path, moto: Moto, one_cli: str) -> None:
    moto.create_bucket("distributed-colony")
    moto.create_bucket("simulation-logs")
    _writer_tree(root)
    args = ["--once", "-v", "-d", str(root), "--endpoint-url", moto.url, "--aws-cli", one_cli]
    filters = [
        "--exclude",
        "*.part",
        "--exclude",
        ".*",
        "--exclude",
        "simulation-logs/tmp/",
        "--bucket-map",
        "distributed_colony=distributed-colony",
    ]
    result = run_in_process(*args, *filters)
    assert result.returncode == 0, result.stdout + result.stderr
    assert moto.keys("distributed-colony") == ["images_shots/frame 0001.png"]
    assert moto.keys("simulation-logs") == ["coordinator.log"]
    assert tree(root) == [
        ".DS_Store",
        "distributed_colony/.cache/index",
        "distributed_colony/data/.state.bin.XyZ12",
        "distributed_colony/images_shots/frame 0002.png.part",
        "simulation-logs/tmp/scratch.bin",
    ]
    # excluded paths are neither failures nor warnings; -v shows them at debug
    assert "failed 0" in result.stdout
    assert "WARN" not in result.stdout
    assert "ERROR" not in result.stdout
    assert "DEBUG" in result.stdout
    assert "excluded by '*.part'" in result.stdout


def test_unmapped_invalid_directory_keeps_the_clear_error(root: Path, moto: Moto) -> None:
    write(root / "distributed_colony" / "kept.txt", b"kept")
    result = run_in_process("--once", "-d", str(root), "--endpoint-url", moto.url)
    assert result.returncode == 1
    assert "distributed_colony: invalid bucket name" in result.stdout
    assert "--bucket-map distributed_colony=" in result.stdout
    assert tree(root) == ["distributed_colony/kept.txt"]


@pytest.mark.floor  # on 3.9 too: the entry point (main) through start-up to an upload
def test_directory_named_like_a_mapping_target_is_refused(root: Path, moto: Moto) -> None:
    moto.create_bucket("distributed-colony")
    write(root / "distributed_colony" / "same.txt", b"from the mapped directory")
    write(root / "distributed-colony" / "same.txt", b"from the other one")
    result = run_in_process(
        "--once",
        "-d",
        str(root),
        "--endpoint-url",
        moto.url,
        "--bucket-map",
        "distributed_colony=distributed-colony",
    )
    assert result.returncode == 1
    assert "keys could collide" in result.stdout
    assert moto.get("distributed-colony", "same.txt") == b"from the mapped directory"
    assert tree(root) == ["distributed-colony/same.txt"]


@pytest.mark.parametrize(
    ("directory", "entries", "bucket", "problem"),
    [
        ("my-bucket", [], "my-bucket", None),
        ("distributed_colony", [], "distributed_colony", "invalid bucket name"),
        ("distributed_colony", MAP, "distributed-colony", None),
        ("logs", ["logs=simulation-logs"], "simulation-logs", None),
        ("distributed-colony", MAP, "distributed-colony", "keys could collide"),
        ("other_dir", MAP, "other_dir", "invalid bucket"),
    ],
)
def test_bucket_for(directory: str, entries: list[str], bucket: str, problem: str | None) -> None:
    found, why = bucket_for(directory, parse_bucket_map(entries))
    assert found == bucket
    assert (why is None) if problem is None else (why is not None and problem in why)


def test_an_unchanged_directory_of_excluded_files_counts_the_same_every_scan(
    root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The daemon's scans: the first lists the directory, the next count its excluded
    files from its note, one DEBUG line a pattern, with the same counts and record."""
    folder = root / "b-1" / "run"
    for n in range(3):
        write(folder / f"{n}.part", b"x")
    write(folder / "skip.tmp", b"y")
    config = Config(root=root, stability=2, excludes=parse_excludes(["*.part", "*.tmp"]))
    # nothing to upload: an aws call would fail on this missing CLI
    uploader = Uploader(config, AwsCli(executable=str(root / "no-aws")), LOG)
    time.sleep(2.1)  # the directory's last change out of the racy window: it can be noted
    first = uploader.scan_once()
    with caplog.at_level(logging.DEBUG, logger=LOG.name):
        again = [uploader.scan_once() for _ in range(2)]
    assert first.excluded == 4 and first.failed == 0
    assert [s.record() for s in again] == [first.record()] * 2
    lines = sorted(r.getMessage() for r in caplog.records if "excluded by" in r.getMessage())
    assert lines == sorted(
        [
            f"{folder}: 1 excluded by '*.tmp' (directory unchanged, not listed)",
            f"{folder}: 3 excluded by '*.part' (directory unchanged, not listed)",
        ]
        * 2
    )
    assert sorted(p.name for p in folder.iterdir()) == ["0.part", "1.part", "2.part", "skip.tmp"]
