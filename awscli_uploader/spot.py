"""Racing a spot interruption: which uploads fit before the instance ends."""

from __future__ import annotations

from collections.abc import Sequence

from .scanner import Candidate

DRAIN_RATE = 10 * 1024 * 1024  # bytes/s assumed when racing a spot interruption
DRAIN_OVERHEAD = 5.0  # seconds per batch: CLI start, listing, verification


def fit_before_deadline(
    files: Sequence[Candidate], seconds_left: float
) -> tuple[list[Candidate], list[Candidate]]:
    """Split files into those whose upload and verification fit in the time left, smallest
    first, and those left alone (an upload cut off by the instance's end helps nobody)."""
    budget = (seconds_left - DRAIN_OVERHEAD) * DRAIN_RATE
    fit: list[Candidate] = []
    left: list[Candidate] = []
    for item in sorted(files, key=lambda f: f.size):
        if item.size <= budget:
            budget -= item.size
            fit.append(item)
        else:
            left.append(item)
    return fit, left
