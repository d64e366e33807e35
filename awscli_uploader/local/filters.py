"""Operator filters: which paths are excluded, and which directory goes to which bucket.

Exclude patterns are gitignore-lite globs on the path relative to the root
(`<dir>/<key...>`, always with `/`):

- `*` matches any characters but `/`, `?` one character but `/`;
- `**` matches any characters including `/`, and `**/` also matches nothing,
  so `a/**/b` matches `a/b` and `a/x/y/b`;
- a pattern without `/` matches the name of a file or directory at any depth
  (`*.tmp`, `.*`); a pattern with `/` is anchored at the root (`logs/*.gz`),
  and a leading `/` anchors a pattern without another one (`/scratch`);
- a trailing `/` matches directories only (`tmp/`);
- a directory that matches excludes everything below it;
- everything else is literal (no `[...]` classes, escapes or negation), and
  matching is case-sensitive.

Both are parsed and validated once at start; the matching is pure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from ..names import bucket_name_problem


class FilterError(ValueError):
    """A pattern or mapping that can't be used; the message says which and why."""


@dataclass(frozen=True)
class Pattern:
    text: str
    regex: re.Pattern[str]
    anchored: bool  # matched against the whole relative path, else against one name
    dir_only: bool


def _translate(glob: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(glob[i]))
            i += 1
    return "".join(out)


def compile_pattern(text: str) -> Pattern:
    """One exclude pattern, or FilterError saying why it can never work."""
    body = text.strip()
    dir_only = body.endswith("/")
    body = body.rstrip("/")
    anchored = "/" in body
    body = body.lstrip("/")
    if not body:
        raise FilterError(f"exclude pattern {text!r} is empty")
    if "\0" in body:
        raise FilterError(f"exclude pattern {text!r} contains a NUL byte")
    for segment in body.split("/"):
        if segment in ("", ".", ".."):
            raise FilterError(
                f"exclude pattern {text!r} has an empty, '.' or '..' segment; "
                "paths are relative to the root, like 'my-bucket/tmp/*'"
            )
    regex = re.compile(_translate(body), re.DOTALL)
    return Pattern(text, regex, anchored, dir_only)


def _matches(pattern: Pattern, rel: str, *, is_dir: bool) -> bool:
    if pattern.dir_only and not is_dir:
        return False
    subject = rel if pattern.anchored else rel.rsplit("/", 1)[-1]
    return pattern.regex.fullmatch(subject) is not None


@dataclass(frozen=True)
class Excludes:
    patterns: tuple[Pattern, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def match(self, rel: str, *, is_dir: bool) -> str | None:
        """The first pattern that matches this very path (not its parents), or None.

        The scanner prunes excluded directories, so it never needs to ask about parents.
        """
        for pattern in self.patterns:
            if _matches(pattern, rel, is_dir=is_dir):
                return pattern.text
        return None

    def excludes(self, rel: str, *, is_dir: bool = False) -> str | None:
        """The pattern that excludes `rel` itself or a directory above it, or None."""
        parts = rel.split("/")
        for depth in range(1, len(parts)):
            found = self.match("/".join(parts[:depth]), is_dir=True)
            if found is not None:
                return found
        return self.match(rel, is_dir=is_dir)


def split_list(value: str) -> list[str]:
    """An environment list: items separated by commas or newlines, blanks dropped."""
    return [item.strip() for item in re.split(r"[,\n]", value) if item.strip()]


def parse_excludes(patterns: Iterable[str]) -> Excludes:
    return Excludes(tuple(compile_pattern(p) for p in patterns if p.strip()))


@dataclass(frozen=True)
class BucketMap:
    """Top-level directory name -> bucket, for directories whose names S3 refuses."""

    pairs: tuple[tuple[str, str], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.pairs)

    def get(self, directory: str) -> str | None:
        for source, bucket in self.pairs:
            if source == directory:
                return bucket
        return None

    def source_for(self, bucket: str) -> str | None:
        """The mapped directory that sends its files to `bucket`, if any."""
        for source, target in self.pairs:
            if target == bucket:
                return source
        return None


def parse_bucket_map(entries: Iterable[str]) -> BucketMap:
    """`DIR=BUCKET` entries; FilterError on a malformed entry, an invalid bucket name, or two
    directories sent to one bucket (their keys could collide)."""
    pairs: dict[str, str] = {}
    for entry in entries:
        if not entry.strip():
            continue
        directory, sep, bucket = (part.strip() for part in entry.partition("="))
        if not sep or not directory or not bucket:
            raise FilterError(f"bucket map {entry!r} is not DIR=BUCKET")
        if "/" in directory or directory in (".", ".."):
            raise FilterError(
                f"bucket map {entry!r}: DIR must be the name of one directory directly "
                "under the root"
            )
        problem = bucket_name_problem(bucket)
        if problem is not None:
            raise FilterError(f"bucket map {entry!r}: {bucket!r} is not a valid bucket: {problem}")
        if pairs.get(directory, bucket) != bucket:
            raise FilterError(
                f"bucket map: {directory!r} is mapped to both {pairs[directory]!r} and {bucket!r}"
            )
        for other, target in pairs.items():
            if target == bucket and other != directory:
                raise FilterError(
                    f"bucket map: {other!r} and {directory!r} both map to {bucket!r}; "
                    "merge the directories instead"
                )
        pairs[directory] = bucket
    return BucketMap(tuple(pairs.items()))


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
