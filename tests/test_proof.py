from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from helpers import write
from layouts import C5, C7, C10M, C16, C64, C100, LAYOUTS, MIB, T5, T8, layout_id, settings

from awscli_uploader.local.digest import FileChanged
from awscli_uploader.model import RemoteObject, Verdict
from awscli_uploader.s3.settings import MultipartSettings
from awscli_uploader.scan.proof import (
    candidate_chunk_sizes,
    etag_is_md5,
    fingerprint,
    judge,
    layout_is_known,
    local_digests,
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


def test_candidate_chunk_sizes_put_the_cli_default_first() -> None:
    assert candidate_chunk_sizes(20 * MIB, 3)[0] == 8 * MIB
    assert all(-(-20 * MIB // c) == 2 for c in candidate_chunk_sizes(20 * MIB, 2))
    assert 16 * MIB in candidate_chunk_sizes(20 * MIB, 2)
    assert candidate_chunk_sizes(20 * MIB, 0) == []
    assert candidate_chunk_sizes(23 * MIB + 5, 1) == [23 * MIB + 5]  # one part: one ETag


MULTIPART = [row for row in LAYOUTS if row[3] is not None]


@pytest.mark.parametrize(
    ("threshold", "chunksize", "size", "parts", "chunk"),
    MULTIPART,
    ids=map(layout_id, MULTIPART),
)
def test_the_cli_layout_is_the_first_candidate(
    threshold: int, chunksize: int, size: int, parts: int, chunk: int
) -> None:
    """Every layout the CLI makes is tried first, and a mismatch under it is conclusive."""
    configured = settings(threshold, chunksize)
    first = candidate_chunk_sizes(size, parts, configured)[0]
    assert first == chunk if parts > 1 else first >= size  # one part: any chunk >= size
    assert layout_is_known(size, parts, configured)


@pytest.mark.parametrize(
    ("size", "parts", "configured", "known"),
    [
        (20 * MIB, None, MultipartSettings(), True),  # one PUT: the MD5 of the bytes
        (23 * MIB, 1, MultipartSettings(), True),  # one part: the same ETag for any chunk
        (20 * MIB, 3, MultipartSettings(), True),
        (20 * MIB, 2, MultipartSettings(), False),  # not the CLI's layout under its settings
        (20 * MIB, 3, MultipartSettings(chunksize=C10M), True),
        (20 * MIB, 3, MultipartSettings(transfer_client="crt"), False),  # the CRT's own layout
        (20 * MIB, 3, MultipartSettings(transfer_client="classic"), True),
        (20 * MIB, 1, MultipartSettings(transfer_client="auto"), True),
    ],
)
def test_layout_is_known(
    size: int, parts: int | None, configured: MultipartSettings, known: bool
) -> None:
    assert layout_is_known(size, parts, configured) is known


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


@pytest.mark.parametrize(
    ("remote", "size", "etags", "verdict"),
    [
        (
            RemoteObject("k", 9, '"' + "a" * 32 + '-2"'),
            9,
            {"b" * 32 + "-2"},
            Verdict.UNKNOWN_LAYOUT,
        ),
        (RemoteObject("k", 9, '"' + "a" * 32 + '-2"'), 9, {"a" * 32 + "-2"}, Verdict.SAME),
        (RemoteObject("k", 8, '"' + "a" * 32 + '-2"'), 9, {"b" * 32 + "-2"}, Verdict.DIFFERENT),
        (RemoteObject("k", 9, '"' + "a" * 32 + '"'), 9, {"b" * 32}, Verdict.DIFFERENT),
    ],
)
def test_judge_without_the_layout_never_says_different_content(
    remote: RemoteObject, size: int, etags: set[str], verdict: Verdict
) -> None:
    found, reason = judge(remote, size, etags, known_layout=False)
    assert found is verdict
    if verdict is Verdict.UNKNOWN_LAYOUT:
        assert reason.startswith("cannot prove: part layout unknown")


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


MD5 = hashlib.md5(b"bytes").hexdigest()


@pytest.mark.parametrize(
    ("etag", "encryption", "is_md5"),
    [
        (f'"{MD5}"', None, True),
        (f'"{MD5}"', "AES256", True),  # SSE-S3 keeps the MD5
        (f'"{MD5}"', "aws:kms", False),
        (f'"{MD5}"', "sse-c", False),
        (f'"{MD5}-1"', None, False),  # a multipart upload's, even of one part
        ('"not-an-md5"', None, False),
        ("", None, False),
    ],
)
def test_etag_is_md5_only_for_one_put_outside_kms(
    etag: str, encryption: str | None, is_md5: bool
) -> None:
    assert etag_is_md5(RemoteObject("k", 5, etag, None, encryption)) is is_md5


def test_local_digests_read_the_file_once_for_both(tmp_path: Path) -> None:
    path = write(tmp_path / "f", b"bytes")
    md5, sha256, identity = local_digests(path)
    assert (md5, sha256) == (MD5, hashlib.sha256(b"bytes").hexdigest())
    assert identity.ino == path.stat().st_ino


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


HASHED = [  # (threshold, chunksize, size, part size the CLI uses), files small enough to hash
    (T8, C5, T8, C5),  # two parts: 5 + 3 MiB
    (T8, C5, 2 * C5 + 1, C5),
    (T8, C7, 2 * C7 + 1, C7),
    (T8, C16, 12 * MIB + 7, C16),  # one part: every 8-16 MiB file was stranded
    (T8, C16, C16 + 1, C16),
    (T5, C64, 23 * MIB + 5, C64),  # the file
    (T8, C100, T8, C100),
    (T8, C10M, C10M + 1, C10M),
    (T8, C10M, 20 * MIB, C10M),
]


@pytest.fixture(scope="module")
def noise() -> bytes:
    return os.urandom(24 * MIB)


@pytest.mark.parametrize(("threshold", "chunksize", "size", "chunk"), HASHED)
def test_files_uploaded_under_the_settings_are_proven(
    tmp_path: Path, noise: bytes, threshold: int, chunksize: int, size: int, chunk: int
) -> None:
    configured = settings(threshold, chunksize)
    data = noise[:size]
    path = write(tmp_path / "f", data)
    etag = _multipart(data, chunk)
    parts = int(etag.rpartition("-")[2])
    assert prove(path, RemoteObject("f", size, f'"{etag}"'), size, settings=configured) == (
        Verdict.SAME,
        "same size and content",
        fingerprint(path, configured).identity,
    )
    assert fingerprint(path, configured).etag == etag
    changed = _multipart(data[:-1] + bytes([data[-1] ^ 1]), chunk)
    other = prove(path, RemoteObject("f", size, f'"{changed}"'), size, settings=configured)
    assert other.verdict is Verdict.DIFFERENT
    alien = f'"{"f" * 32}-{parts + 1}"'  # a part count the CLI does not make here
    unknown = prove(path, RemoteObject("f", size, alien), size, settings=configured)
    assert unknown.verdict is Verdict.UNKNOWN_LAYOUT


def test_a_fingerprint_is_not_conclusive_for_the_crt_client(tmp_path: Path) -> None:
    data = os.urandom(17 * MIB)
    path = write(tmp_path / "f", data)
    crt = MultipartSettings(transfer_client="crt")
    known = fingerprint(path, crt)._replace(etag=hashlib.md5(b"other").hexdigest() + "-3")
    remote = RemoteObject("f", len(data), f'"{_multipart(data, 6 * MIB)}"')
    assert prove(path, remote, len(data), known, crt).verdict is Verdict.SAME  # hashed afresh
    alien = RemoteObject("f", len(data), f'"{"f" * 32}-3"')
    assert prove(path, alien, len(data), known, crt).verdict is Verdict.UNKNOWN_LAYOUT


def test_a_sha256_said_in_the_metadata_never_outweighs_s3s_own_md5() -> None:
    """The metadata's SHA-256 is what the upload sent; a single PUT's ETag is what S3 stored."""
    ours, theirs = b"the file's bytes", b"other bytes here"  # the same size
    sha256 = hashlib.sha256(ours).hexdigest()
    md5 = hashlib.md5(ours).hexdigest()
    stored = RemoteObject("k", len(ours), f'"{hashlib.md5(theirs).hexdigest()}"', sha256=sha256)
    assert judge(stored, len(ours), {md5}, sha256)[0] is Verdict.DIFFERENT
    assert judge(stored._replace(etag=f'"{md5}"'), len(ours), {md5}, sha256)[0] is Verdict.SAME
    opaque = stored._replace(encryption="aws:kms")  # its ETag says nothing: the SHA-256 decides
    assert judge(opaque, len(ours), {md5}, sha256)[0] is Verdict.SAME
