from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from helpers import write

from awscli_uploader.proof import (
    CLI_CHUNK_SIZE,
    MIB,
    FileChanged,
    RemoteObject,
    Verdict,
    candidate_chunk_sizes,
    cli_chunk_size,
    fingerprint,
    judge,
    local_etags,
    parse_etag,
    prove,
)


@pytest.mark.parametrize(
    ("etag", "parsed"),
    [
        ('"d41d8cd98f00b204e9800998ecf8427e"', ("d41d8cd98f00b204e9800998ecf8427e", None)),
        ("D41D8CD98F00B204E9800998ECF8427E", ("d41d8cd98f00b204e9800998ecf8427e", None)),
        ('"0123456789abcdef0123456789abcdef-3"', ("0123456789abcdef0123456789abcdef", 3)),
        ('"not-an-md5"', None),
        ("", None),
    ],
)
def test_parse_etag(etag: str, parsed: tuple[str, int | None] | None) -> None:
    assert parse_etag(etag) == parsed


@pytest.mark.parametrize(
    ("size", "chunk"),
    [(1, CLI_CHUNK_SIZE), (80_000 * MIB, CLI_CHUNK_SIZE), (80_001 * MIB, 2 * CLI_CHUNK_SIZE)],
)
def test_cli_chunk_size_doubles_past_ten_thousand_parts(size: int, chunk: int) -> None:
    assert cli_chunk_size(size) == chunk


def test_candidate_chunk_sizes_put_the_cli_default_first() -> None:
    assert candidate_chunk_sizes(20 * MIB, 3)[0] == 8 * MIB
    assert all(-(-20 * MIB // c) == 2 for c in candidate_chunk_sizes(20 * MIB, 2))
    assert 16 * MIB in candidate_chunk_sizes(20 * MIB, 2)
    assert candidate_chunk_sizes(20 * MIB, 0) == []


def _multipart(data: bytes, chunk: int) -> str:
    parts = [hashlib.md5(data[i : i + chunk]).digest() for i in range(0, len(data), chunk)]
    return hashlib.md5(b"".join(parts)).hexdigest() + f"-{len(parts)}"


@pytest.mark.parametrize("chunk", [8 * MIB, 5 * MIB, 16 * MIB])
def test_local_multipart_etag_for_any_configured_chunk(tmp_path: Path, chunk: int) -> None:
    data = os.urandom(17 * MIB + 123)
    path = write(tmp_path / "f", data)
    remote = _multipart(data, chunk)
    found = local_etags(path, f'"{remote}"')
    assert found is not None
    assert remote in found[0]


@pytest.mark.parametrize(
    ("remote", "size", "etags", "verdict"),
    [
        (RemoteObject("k", 3, '"abc"'), 4, {"x"}, Verdict.DIFFERENT),
        (RemoteObject("k", 3, '"' + "a" * 32 + '"'), 3, {"a" * 32}, Verdict.SAME),
        (RemoteObject("k", 3, '"' + "a" * 32 + '"'), 3, {"b" * 32}, Verdict.DIFFERENT),
        (RemoteObject("k", 9, '"' + "a" * 32 + '-2"'), 9, {"a" * 32 + "-2"}, Verdict.SAME),
        (RemoteObject("k", 9, '"' + "a" * 32 + '-2"'), 9, {"a" * 32}, Verdict.DIFFERENT),
        (RemoteObject("k", 3, '"kms-opaque-etag"'), 3, None, Verdict.UNPROVABLE),
    ],
)
def test_judge(remote: RemoteObject, size: int, etags: set[str] | None, verdict: Verdict) -> None:
    assert judge(remote, size, etags)[0] is verdict


def test_same_size_rewrite_is_different(tmp_path: Path) -> None:
    path = write(tmp_path / "f", b"new bytes")
    old = RemoteObject("f", 9, '"' + hashlib.md5(b"old bytes").hexdigest() + '"')
    assert prove(path, old, 9).verdict is Verdict.DIFFERENT


def test_prove_returns_the_identity_it_hashed(tmp_path: Path) -> None:
    path = write(tmp_path / "f", b"bytes")
    remote = RemoteObject("f", 5, hashlib.md5(b"bytes").hexdigest())
    result = prove(path, remote, 5)
    assert result.verdict is Verdict.SAME
    assert result.identity is not None
    assert result.identity.ino == path.stat().st_ino


def test_fifo_is_never_opened_for_reading(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(FileChanged):
        local_etags(fifo, "d41d8cd98f00b204e9800998ecf8427e")


def test_symlink_is_not_followed(tmp_path: Path) -> None:
    target = write(tmp_path / "t", b"x")
    (tmp_path / "l").symlink_to(target)
    with pytest.raises(FileChanged):
        local_etags(tmp_path / "l", "d41d8cd98f00b204e9800998ecf8427e")


@pytest.mark.parametrize("size", [0, 5000, 8 * MIB, 17 * MIB + 5])
def test_fingerprint_is_the_cli_default_etag(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    path = write(tmp_path / "f", data)
    expected = hashlib.md5(data).hexdigest() if size < 8 * MIB else _multipart(data, 8 * MIB)
    assert fingerprint(path).etag == expected


def test_prove_uses_a_fingerprint_only_for_its_part_layout(tmp_path: Path) -> None:
    data = os.urandom(17 * MIB)
    path = write(tmp_path / "f", data)
    known = fingerprint(path)
    same_layout = RemoteObject("f", len(data), f'"{_multipart(data, 8 * MIB)}"')
    assert prove(path, same_layout, len(data), known) == (
        Verdict.SAME,
        "same size and content",
        known.identity,
    )
    other_layout = RemoteObject("f", len(data), f'"{_multipart(data, 16 * MIB)}"')
    assert prove(path, other_layout, len(data), known).verdict is Verdict.SAME  # hashed afresh
    stale = known._replace(etag=hashlib.md5(b"other").hexdigest() + "-3")
    assert prove(path, same_layout, len(data), stale).verdict is Verdict.DIFFERENT
