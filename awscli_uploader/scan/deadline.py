"""A deadline for uploads (a spot interruption): the recent upload rate, and which files can
still be uploaded and verified before it."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from typing import Protocol, TypeVar

DRAIN_OVERHEAD = 5.0  # seconds per batch: CLI start, listing, verification
DEFAULT_RATE = 4 * 1024 * 1024  # bytes/s before this process has uploaded anything
SAMPLES = 20  # recent upload batches that make the estimate


class _Sized(Protocol):
    @property
    def size(self) -> int: ...


SizedT = TypeVar("SizedT", bound=_Sized)


def fit_before_deadline(
    files: Sequence[SizedT], seconds_left: float, rate: float
) -> tuple[list[SizedT], list[SizedT]]:
    """Split files into those whose upload and verification fit in the time left at `rate`
    bytes/s, smallest first, and those left alone (an upload cut off by the instance's
    end helps nobody)."""
    budget = (seconds_left - DRAIN_OVERHEAD) * rate
    fit: list[SizedT] = []
    left: list[SizedT] = []
    for item in sorted(files, key=lambda f: f.size):
        if item.size <= budget:
            budget -= item.size
            fit.append(item)
        else:
            left.append(item)
    return fit, left


class DrainRate:
    """Bytes per second of this process's recent upload batches (thread-safe).

    Batches that moved no bytes say nothing about the link and are not counted;
    with no history the rate is DEFAULT_RATE, a conservative guess.
    """

    def __init__(self, default: float = DEFAULT_RATE, samples: int = SAMPLES) -> None:
        self.default = default
        self._samples: deque[tuple[int, float]] = deque(maxlen=samples)
        self._lock = threading.Lock()

    def record(self, size: int, seconds: float) -> None:
        if size > 0 and seconds > 0:
            with self._lock:
                self._samples.append((size, seconds))

    def rate(self) -> float:
        with self._lock:
            size = sum(s for s, _ in self._samples)
            seconds = sum(t for _, t in self._samples)
        return size / seconds if seconds > 0 else self.default
