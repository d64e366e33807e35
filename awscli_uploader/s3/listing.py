"""What S3 holds of a batch's keys, read from the batch's key range only.

A listing reads one page (1,000 objects) from just below the smallest key;
keys past it are asked about with head-object when few are left, else the
listing goes on in bounded chunks until it is past the largest key. The cost
follows the batch, never the bucket's history.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

from ..model import RemoteObject
from .awscli import AwsCli

MAX_LISTINGS = 4  # per bucket and phase, run in parallel (head-object calls too)
FIRST_PAGE = 1000  # objects the first listing of a batch's key range reads: one request
LIST_CHUNK = 10_000  # objects per listing process after the first page (bounds its memory)
MAX_HEADS = 16  # keys left past the first page that are asked about one by one


def listing_prefixes(keys: Iterable[str]) -> list[str]:
    """Prefixes whose listings cover all keys and little else: the longest shared prefix,
    or when there is none, one per top-level directory (up to a few; beyond that, the
    whole bucket), so that unrelated objects elsewhere in the bucket cost nothing."""
    names = list(keys)
    shared = os.path.commonprefix(names)  # noqa: RUF071 - S3 prefixes are character-wise
    if shared:
        return [shared]
    groups: dict[str, list[str]] = {}
    for key in names:
        top, slash, _ = key.partition("/")
        groups.setdefault(top + slash, []).append(key)
    if len(groups) > MAX_LISTINGS:
        return [""]
    return sorted(os.path.commonprefix(group) for group in groups.values())  # noqa: RUF071


class Listing(NamedTuple):
    found: dict[str, RemoteObject]  # the batch's keys S3 holds, as listed
    unlisted: list[str]  # keys past the listing: to ask about one by one


def just_below(key: str) -> str:
    """A StartAfter that lists `key` itself and hardly anything before it."""
    return key[:-1]


def list_range(cli: AwsCli, bucket: str, prefix: str, keys: Sequence[str]) -> Listing:
    """List only the keys' range: from just below the smallest, one page first; when keys
    remain past it, few are left to head-object, many make the listing go on in bounded
    chunks (the CLI holds a whole listing in memory) until past the largest."""
    ordered = sorted(keys)
    wanted = set(ordered)
    found: dict[str, RemoteObject] = {}
    below = just_below(ordered[0])
    start, cap = (below if len(below) > len(prefix) else ""), FIRST_PAGE
    while True:
        part = cli.list_objects(bucket, prefix, start_after=start or None, max_items=cap)
        found.update((k, o) for k, o in part.items() if k in wanted)
        if len(part) < cap:
            return Listing(found, [])
        last = max(part)
        rest = [k for k in ordered if k > last]
        if len(rest) <= MAX_HEADS:
            return Listing(found, rest)
        start, cap = last, LIST_CHUNK


def head_each(cli: AwsCli, bucket: str, keys: Sequence[str]) -> dict[str, RemoteObject]:
    """head-object of each key, a few at a time: what S3 holds of them."""
    if not keys:
        return {}
    with ThreadPoolExecutor(min(MAX_LISTINGS, len(keys)), thread_name_prefix="head") as pool:
        heads = list(pool.map(lambda k: cli.head_object(bucket, k), keys))
    return {head.key: head for head in heads if head is not None}


def list_remote(cli: AwsCli, bucket: str, keys: Sequence[str]) -> dict[str, RemoteObject]:
    """What S3 holds of the keys: a range listing per listing prefix, then head-object of
    the keys past it. Raises AwsCliError."""
    groups: dict[str, list[str]] = {p: [] for p in listing_prefixes(keys)}
    for key in keys:
        groups[max(p for p in groups if key.startswith(p))].append(key)
    listed = [(prefix, group) for prefix, group in groups.items() if group]
    if not listed:
        return {}
    with ThreadPoolExecutor(len(listed), thread_name_prefix="list") as pool:
        listings = list(pool.map(lambda pg: list_range(cli, bucket, *pg), listed))
    found: dict[str, RemoteObject] = {}
    for listing in listings:
        found.update(listing.found)
    found.update(head_each(cli, bucket, [k for li in listings for k in li.unlisted]))
    return found
