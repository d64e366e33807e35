"""The check phase's pure parts: which prefixes to list for a batch of keys."""

from __future__ import annotations

import pytest

from awscli_uploader.check import listing_prefixes


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
