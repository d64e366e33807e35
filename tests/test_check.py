"""The check phase: which prefixes and key ranges to list for a batch, what to look up."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from helpers import REGION, Moto, RecordingCli, required_cli

from awscli_uploader.model import Candidate, Verdict
from awscli_uploader.s3 import listing
from awscli_uploader.s3.listing import listing_prefixes
from awscli_uploader.scan import check
from awscli_uploader.scan.check import Step, next_step


@pytest.mark.parametrize(
    ("verdict", "uploaded", "keep", "step"),
    [
        (None, False, False, Step.UPLOAD),
        ("same", False, False, Step.DELETE),
        ("different", False, False, Step.UPLOAD),
        ("unprovable", False, False, Step.SHA256),
        ("unknown layout", False, False, Step.SHA256),
        (None, False, True, Step.UPLOAD),
        ("same", False, True, Step.DELETE),
        ("different", False, True, Step.KEEP),
        ("unprovable", False, True, Step.READ_BACK),  # never replaced, never stranded
        ("unknown layout", False, True, Step.READ_BACK),
        ("same", True, False, Step.DELETE),
        ("different", True, False, Step.KEEP),
        ("unprovable", True, False, Step.SHA256),
        ("unknown layout", True, False, Step.SHA256),
        (None, True, False, Step.KEEP),
    ],
)
def test_next_step(verdict: str | None, uploaded: bool, keep: bool, step: Step) -> None:
    found = None if verdict is None else Verdict(verdict)
    assert next_step(found, uploaded=uploaded, keep_existing=keep) is step


@pytest.mark.parametrize(
    ("keys", "prefixes"),
    [
        (["a/b/c.txt"], ["a/b/c.txt"]),
        (["run1/x", "run1/y"], ["run1/"]),
        (["images/1.png", "images/2.png", "logs/a.log"], ["images/", "logs/a.log"]),
        (["a", "b"], ["a", "b"]),
        (["a/1", "b/1", "c/1", "d/1", "e/1"], [""]),  # too many: list the whole bucket
    ],
)
def test_listing_prefixes(keys: list[str], prefixes: list[str]) -> None:
    assert listing_prefixes(keys) == prefixes


@pytest.mark.parametrize(
    ("key", "below"), [("a/b.png", "a/b.pn"), ("x", ""), ("-dash", "-das"), ("é", "")]
)
def test_just_below_lists_the_key_itself(key: str, below: str) -> None:
    assert listing.just_below(key) == below
    assert below < key


HISTORY = [f"h/{i:03d}" for i in range(100)]  # 100 objects already there


# The tests that read the history run one after another on one worker, so it is put once.
READS_HISTORY = pytest.mark.xdist_group("check-history")


@pytest.fixture
def history(moto_server: Moto, monkeypatch: pytest.MonkeyPatch) -> Moto:
    """A bucket holding exactly HISTORY (put again only if another test reset the server in
    between); pages of 10 objects, chunks of 30, at most 3 heads."""
    moto = moto_server
    if moto.buckets() != ["hist"] or moto.keys("hist") != HISTORY:
        moto.reset()
        moto.create_bucket("hist")
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda k: moto.put("hist", k, k.encode()), HISTORY))
    monkeypatch.setattr(listing, "FIRST_PAGE", 10)
    monkeypatch.setattr(listing, "LIST_CHUNK", 30)
    monkeypatch.setattr(listing, "MAX_HEADS", 3)
    return moto


def _asked(cli: RecordingCli) -> list[str]:
    """What each call asked for: the listing's range, or a head-object."""
    kept = ("--prefix", "--start-after", "head-object")
    return [" ".join(a for a in args[1:] if a.startswith(kept)) for args in cli.calls]


@READS_HISTORY
@pytest.mark.parametrize(
    ("version", "keys", "expected_calls"),
    [
        # within the first page from just below the smallest key: one listing
        # (the new key past the history, h/zzz-new, is asked about by head-object)
        ("v1", ["h/040", "h/045", "h/049"], ["--prefix=h/ --start-after=h/04", "head-object"]),
        # keys past the first page, few: asked about one by one
        (
            "v1",
            ["h/040", "h/080", "h/095"],
            ["--prefix=h/ --start-after=h/04", *["head-object"] * 3],
        ),
        # many past it: the listing goes on in chunks and stops past the largest key (the
        # CLI's own paging, so with both CLIs)
        *(
            pytest.param(
                version,
                [f"h/{i:03d}" for i in range(20, 90, 10)],
                [
                    "--prefix=h/ --start-after=h/02",
                    "--prefix=h/ --start-after=h/029",
                    "--prefix=h/ --start-after=h/059",
                    "head-object",
                ],
                marks=[pytest.mark.slow] if version == "v2" else [],
            )
            for version in ("v1", "v2")
        ),
    ],
)
def test_only_the_batch_key_range_is_listed(
    history: Moto, version: str, keys: list[str], expected_calls: list[str]
) -> None:
    cli = RecordingCli(executable=required_cli(version), region=REGION, endpoint_url=history.url)
    wanted = [*keys, "h/0405-new", "h/zzz-new"]  # two keys S3 doesn't hold
    found = listing.list_remote(cli, "hist", wanted)
    assert sorted(found) == sorted(keys)
    assert all(found[k].size == len(k) for k in keys)
    assert sorted(_asked(cli)) == sorted(expected_calls)


@READS_HISTORY
def test_a_short_listing_proves_absence_without_heads(history: Moto, aws_cli: str) -> None:
    cli = RecordingCli(executable=aws_cli, region=REGION, endpoint_url=history.url)
    found = listing.list_remote(cli, "hist", ["h/099", "h/0995", "i/1"])
    assert list(found) == ["h/099"]
    assert sorted(_asked(cli)) == ["--prefix=h/099", "--prefix=i/1"]


@pytest.mark.parametrize(
    ("size", "suspect", "every", "checked"),
    [
        (100, False, False, False),  # new and small: uploaded straight away
        (check.CHECK_FIRST_BYTES, False, False, True),  # big: never uploaded twice
        (100, True, False, True),  # an earlier attempt left it unsettled
        (100, False, True, True),  # --if-exists keep, --dry-run
    ],
)
def test_needs_check(size: int, suspect: bool, every: bool, checked: bool) -> None:
    item = Candidate(Path("/r/b/k"), "b", "k", size, 0)
    suspects = {("b", "k")} if suspect else set()
    assert check.needs_check(item, suspects, every=every) is checked
