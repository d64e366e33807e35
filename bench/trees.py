"""A case's files: which (bucket, key, size), written under ROOT/<bucket>/<key> with seeded
contents and an old mtime, and the MD5 each object must have in S3."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

MAX_SIZE = 64 * 1024
MIB = 1024 * 1024
PER_DIR = 100  # files per directory in generated trees
AGE = 3600.0  # generated files are this old, so every contender sees them as finished
BUCKETS = ("bench-a", "bench-b")  # most cases' buckets
SEED = 5  # of most cases' sizes

_POOL = random.Random(20261124).randbytes(2 * MAX_SIZE)


@dataclass(frozen=True)
class FileSpec:
    bucket: str
    key: str
    size: int
    index: int


@dataclass
class Tree:
    """Files written under root/<bucket>/<key>, with the MD5 each object must have."""

    root: Path
    files: list[FileSpec]
    md5: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def buckets(self) -> list[str]:
        return sorted({f.bucket for f in self.files})

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.files)

    def path(self, spec: FileSpec) -> Path:
        return self.root / spec.bucket / spec.key


def plan(
    count: int, *, buckets: Sequence[str], prefix: str, seed: int, max_size: int = MAX_SIZE
) -> list[FileSpec]:
    """`count` files dealt round-robin over `buckets`, PER_DIR to a directory, seeded sizes."""
    rng = random.Random(seed)
    files = []
    for i in range(count):
        directory = i // len(buckets) // PER_DIR
        key = f"{prefix}d{directory:04d}/f{i:06d}.bin"
        files.append(FileSpec(buckets[i % len(buckets)], key, rng.randint(1, max_size), i))
    return files


def content(index: int, size: int) -> bytes:
    """Deterministic bytes of file `index` (distinct per index, up to MAX_SIZE)."""
    offset = (index * 7919) % MAX_SIZE
    return (index.to_bytes(8, "big") + _POOL[offset : offset + size])[:size]


def write_tree(
    root: Path, files: Sequence[FileSpec], *, age: float = AGE, sparse: bool = False
) -> Tree:
    """Write the files with an mtime `age` seconds ago; sparse files have a size but no data."""
    tree = Tree(root, list(files))
    mtime = time.time() - age
    made: set[Path] = set()
    for spec in files:
        path = tree.path(spec)
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
        if sparse:
            with open(path, "wb") as handle:
                handle.truncate(spec.size)
        elif spec.size > MAX_SIZE:
            tree.md5[spec.bucket, spec.key] = _write_big(path, spec)
        else:
            data = content(spec.index, spec.size)
            path.write_bytes(data)
            tree.md5[spec.bucket, spec.key] = hashlib.md5(data).hexdigest()
        os.utime(path, (mtime, mtime))
    return tree


def _write_big(path: Path, spec: FileSpec) -> str:
    block = random.Random(spec.index).randbytes(MIB)
    digest = hashlib.md5()
    with open(path, "wb") as handle:
        left, n = spec.size, 0
        while left > 0:
            data = (n.to_bytes(8, "big") + block[8:])[: min(MIB, left)]
            handle.write(data)
            digest.update(data)
            left -= len(data)
            n += 1
    return digest.hexdigest()


def fresh_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path
