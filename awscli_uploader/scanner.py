"""Which files are candidates, and for which bucket and key.

The decisions are pure functions of names, sizes and times; `scan` is the only
part that reads the disk, streaming with `os.scandir` and never following a
symlink.
"""

from __future__ import annotations

import enum
import ipaddress
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from .filters import BucketMap, Excludes

MAX_KEY_BYTES = 1024
NS = 1_000_000_000
_BUCKET_CHARS = re.compile(r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$")


class Candidate(NamedTuple):
    """A regular, stable file with a valid bucket and key."""

    path: Path
    bucket: str
    key: str
    size: int
    mtime_ns: int


class SkipKind(enum.Enum):
    UNSTABLE = "unstable"
    IGNORED = "ignored"
    INVALID = "invalid"
    EXCLUDED = "excluded"  # by an operator's --exclude: never uploaded, deleted or warned about


class Skipped(NamedTuple):
    path: Path
    kind: SkipKind
    reason: str


def display(name: str | os.PathLike[str]) -> str:
    """A name safe for one log line: control characters and bad UTF-8 are escaped."""
    text = os.fspath(name)
    if text.isprintable():
        return text
    return ascii(text)[1:-1] if _has_surrogates(text) else repr(text)[1:-1]


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def bucket_name_problem(name: str) -> str | None:
    """Why S3 would refuse `name` as a bucket name, or None when it is valid."""
    if not 3 <= len(name) <= 63:
        return "must be 3 to 63 characters long"
    if not _BUCKET_CHARS.match(name):
        return (
            "may contain only lowercase letters, digits, '.' and '-', "
            "and must start and end with a letter or digit"
        )
    if ".." in name:
        return "must not contain two adjacent periods"
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        pass
    else:
        return "must not be formatted as an IP address"
    if name.startswith(("xn--", "sthree-")) or name.endswith(("-s3alias", "--ol-s3")):
        return "uses a prefix or suffix that S3 reserves"
    return None


def bucket_for(directory: str, bucket_map: BucketMap | None) -> tuple[str, str | None]:
    """The bucket a top-level directory's files go to, and why they can't (or None).

    A mapped directory goes to its bucket. A directory named like a mapping's
    target is refused: its keys and the mapped directory's could collide.
    """
    if bucket_map:
        mapped = bucket_map.get(directory)
        if mapped is not None:
            return mapped, None
        source = bucket_map.source_for(directory)
        if source is not None:
            return directory, (
                f"--bucket-map also sends {source}/ to this bucket and keys could collide; "
                f"its files stay local (move them into {source}/)"
            )
    problem = bucket_name_problem(directory)
    if problem is None:
        return directory, None
    return directory, (
        f"invalid bucket name: {problem}; its files stay local "
        f"(or map it: --bucket-map {directory}=VALID-NAME)"
    )


def key_problem(key: str) -> str | None:
    """Why `key` can't be uploaded as given, or None."""
    if _has_surrogates(key):
        return "name is not valid UTF-8"
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in key):
        return "name contains control characters"
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        return f"key is longer than {MAX_KEY_BYTES} bytes in UTF-8"
    return None


def is_stable(*, mtime_ns: int, now_ns: int, stability: float) -> bool:
    """A file is ready when it has not changed for more than `stability` seconds.

    An mtime on a whole second may come from a filesystem that keeps only
    seconds; the file may then be up to a second younger, so a second is added.
    """
    tolerance = NS if mtime_ns % NS == 0 else 0
    return now_ns - mtime_ns > stability * NS + tolerance


def scan(
    root: Path,
    *,
    now_ns: int,
    stability: float,
    reserved: frozenset[str] = frozenset(),
    excludes: Excludes | None = None,
    bucket_map: BucketMap | None = None,
) -> Iterator[Candidate | Skipped]:
    """Walk `root/<bucket>/<key...>` and say, file by file, what is ready.

    Names in `reserved` directly under root are passed over silently. An
    excluded directory is reported once and not entered.
    """
    try:
        top = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as exc:
        yield Skipped(root, SkipKind.INVALID, f"cannot read root directory: {exc.strerror}")
        return
    for entry in top:
        if entry.name in reserved:
            continue
        path = Path(entry.path)
        if excludes and (
            pattern := excludes.match(entry.name, is_dir=entry.is_dir(follow_symlinks=False))
        ):
            yield Skipped(path, SkipKind.EXCLUDED, f"excluded by {pattern!r}")
        elif entry.is_symlink():
            yield Skipped(path, SkipKind.IGNORED, "bucket directory is a symlink; not followed")
        elif entry.is_dir(follow_symlinks=False):
            bucket, problem = bucket_for(entry.name, bucket_map)
            if problem is not None:
                yield Skipped(path, SkipKind.INVALID, problem)
                continue
            yield from _walk_bucket(
                path, bucket, now_ns=now_ns, stability=stability, excludes=excludes
            )
        else:
            yield Skipped(path, SkipKind.IGNORED, "file directly under the root has no bucket")


def _walk_bucket(
    bucket_dir: Path,
    bucket: str,
    *,
    now_ns: int,
    stability: float,
    excludes: Excludes | None = None,
) -> Iterator[Candidate | Skipped]:
    stack: list[tuple[Path, str]] = [(bucket_dir, "")]
    while stack:
        directory, prefix = stack.pop()
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name, reverse=True)
        except FileNotFoundError:
            continue  # vanished mid-scan: nothing left to upload there
        except OSError as exc:
            yield Skipped(directory, SkipKind.INVALID, f"cannot read directory: {exc.strerror}")
            continue
        for entry in entries:
            path = Path(entry.path)
            key = prefix + entry.name
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            except OSError as exc:
                yield Skipped(path, SkipKind.INVALID, f"cannot stat: {exc.strerror}")
                continue
            if excludes and (
                pattern := excludes.match(
                    f"{bucket_dir.name}/{key}", is_dir=stat.S_ISDIR(info.st_mode)
                )
            ):
                yield Skipped(path, SkipKind.EXCLUDED, f"excluded by {pattern!r}")
            elif stat.S_ISDIR(info.st_mode):
                stack.append((path, key + "/"))
            elif stat.S_ISLNK(info.st_mode):
                yield Skipped(path, SkipKind.IGNORED, "symlink; not followed")
            elif not stat.S_ISREG(info.st_mode):
                yield Skipped(path, SkipKind.IGNORED, "not a regular file")
            elif (problem := key_problem(key)) is not None:
                yield Skipped(path, SkipKind.INVALID, problem)
            elif not is_stable(mtime_ns=info.st_mtime_ns, now_ns=now_ns, stability=stability):
                age = max(0.0, (now_ns - info.st_mtime_ns) / NS)
                yield Skipped(path, SkipKind.UNSTABLE, f"modified {age:.1f}s ago; waiting")
            else:
                yield Candidate(path, bucket, key, info.st_size, info.st_mtime_ns)
