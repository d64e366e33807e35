"""Whether a run did its job: S3 holds exactly the expected keys, each byte-equal to its
source, and nothing is left under the root but the uploader's own state directory."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from server import Moto
from trees import MIB, Tree

from awscli_uploader.local.state import StateDir


def verify(moto: Moto, tree: Tree, *, local: bool = True, listing: bool = True) -> list[str]:
    """What is wrong after a run: objects missing, extra or not byte-equal, files left local.

    Single-part ETags are the MD5 of the bytes moto received; a multipart object is
    downloaded and hashed. With `local` False (a copy, not a move) local files may stay.
    With `listing` False each expected object is asked for by name (HEAD), for prefixes
    that hold other objects too: extra objects then go unseen.
    """
    moved = tree.files
    problems: list[str] = []
    for bucket in sorted({f.bucket for f in moved}):
        expected = {f.key: f for f in moved if f.bucket == bucket}
        found = _listed(moto, bucket, expected) if listing else _headed(moto, bucket, expected)
        for key in sorted(set(found) - set(expected)):
            problems.append(f"s3://{bucket}/{key}: unexpected object")
        for key, spec in sorted(expected.items()):
            obj = found.get(key)
            if obj is None:
                problems.append(f"s3://{bucket}/{key}: missing")
                continue
            md5 = tree.md5[bucket, key]
            if obj["Size"] != spec.size:
                problems.append(f"s3://{bucket}/{key}: size {obj['Size']} != {spec.size}")
            elif _object_md5(moto, bucket, key, obj["ETag"]) != md5:
                problems.append(f"s3://{bucket}/{key}: content differs from the source")
    if local:
        problems += [f"{p}: left locally" for p in leftovers(tree.root)]
    return problems


def _listed(moto: Moto, bucket: str, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for prefix in run_prefixes(keys):
        pages = moto.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for page in pages:
            for obj in page.get("Contents", []):
                found[obj["Key"]] = obj
    return found


def _headed(moto: Moto, bucket: str, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
    from botocore.exceptions import ClientError

    found: dict[str, dict[str, Any]] = {}
    for key in keys:
        try:
            head = moto.s3.head_object(Bucket=bucket, Key=key)
        except ClientError:
            continue
        found[key] = {"Key": key, "Size": head["ContentLength"], "ETag": head["ETag"]}
    return found


def run_prefixes(keys: Iterable[str]) -> set[str]:
    """Per top-level directory, the longest prefix its keys share: where a run's objects are."""
    groups: dict[str, list[str]] = {}
    for key in keys:
        groups.setdefault(key.split("/", 1)[0], []).append(key)
    return {os.path.commonprefix(group) for group in groups.values()}  # noqa: RUF071


def _object_md5(moto: Moto, bucket: str, key: str, etag: str) -> str:
    etag = etag.strip('"')
    if "-" not in etag:
        return etag
    digest = hashlib.md5()
    body = moto.s3.get_object(Bucket=bucket, Key=key)["Body"]
    for block in iter(lambda: body.read(MIB), b""):
        digest.update(block)
    return digest.hexdigest()


def leftovers(root: Path) -> list[str]:
    """Files under root, the uploader's own state directory aside (its staging must be empty)."""
    state = StateDir(root)
    left = [f"{state.path}: staged {bucket}/{key}" for bucket, key in state.staged_keys()]
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if here == root and state.path.name in dirnames:
            dirnames.remove(state.path.name)
        left += [str(here / name) for name in filenames]
        left += [str(here / d) for d in dirnames if (here / d).is_symlink()]
    return left
