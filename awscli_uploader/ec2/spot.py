"""Spot interruptions: watch the metadata service for the interruption notice and the
rebalance recommendation, and say by when uploads must be verified.

A rebalance recommendation comes before the two-minute interruption notice: it
starts the same drain, with a deadline that assumes the notice could follow at
any moment (so it slides forward while no notice has come). Which files fit
before a deadline is the scan's decision (scan/deadline.py).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from .imds import Imds, SpotNotice

POLL_SECONDS = 5.0
NOTICE_SECONDS = 120.0  # AWS gives two minutes between the notice and the action
SAFETY_SECONDS = 10.0  # kept free at the end for the last verification and deletion
REBALANCE_PATH = "events/recommendations/rebalance"


def seconds_until(timestamp: str, *, default: float, now: datetime | None = None) -> float:
    """Seconds from now to an IMDS time such as 2026-11-24T00:02:00Z (default if unparsable)."""
    try:
        when = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return default
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return (when - (now or datetime.now(timezone.utc))).total_seconds()


def parse_rebalance(body: str | None) -> str | None:
    """`{"noticeTime": "2026-11-24T00:00:00Z"}` → its time; None when there is none."""
    if not body:
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict) or "noticeTime" not in data:
        return None
    return str(data["noticeTime"])


@dataclass
class SpotWatch:
    """Polls the spot notice and the rebalance recommendation, in a thread of its own so
    that a notice arriving during a long upload is seen within POLL_SECONDS.

    `on_deadline` receives the time.monotonic() by which uploads must be verified,
    each time it changes; `on_notice` that of an interruption notice, once; `alert` is set
    once a drain starts.
    """

    imds: Imds
    log: logging.Logger
    on_deadline: Callable[[float | None], None]
    poll_seconds: float = POLL_SECONDS
    on_notice: Callable[[float], None] | None = None  # the interruption's own deadline

    def __post_init__(self) -> None:
        self.alert = threading.Event()
        self.notice: SpotNotice | None = None
        self.rebalance: str | None = None
        self._notice_deadline: float | None = None
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def draining(self) -> bool:
        return self.alert.is_set()

    def deadline(self, now: float | None = None) -> float | None:
        """The notice's deadline; after a rebalance alone, the latest a notice could allow."""
        if self._notice_deadline is not None:
            return self._notice_deadline
        if self.rebalance is not None:
            return (time.monotonic() if now is None else now) + NOTICE_SECONDS - SAFETY_SECONDS
        return None

    def poll(self) -> None:
        """Ask the metadata service once; start or tighten the drain on news."""
        if self.notice is None:
            notice = self.imds.spot_action()
            if notice is not None:
                left = seconds_until(notice.time, default=NOTICE_SECONDS) - SAFETY_SECONDS
                self.notice, self._notice_deadline = notice, time.monotonic() + left
                self.log.warning(
                    "spot interruption notice (%s at %s): draining now, %.0fs for uploads",
                    notice.action,
                    notice.time,
                    left,
                )
                self.alert.set()
                if self.on_notice is not None:
                    self.on_notice(self._notice_deadline)
        if self.notice is None and self.rebalance is None:
            self.rebalance = parse_rebalance(self.imds.get(REBALANCE_PATH))
            if self.rebalance is not None:
                self.log.warning(
                    "spot rebalance recommendation (at %s): draining early, "
                    "uploads limited to what fits in %.0fs",
                    self.rebalance,
                    NOTICE_SECONDS - SAFETY_SECONDS,
                )
                self.alert.set()
        self.on_deadline(self.deadline())

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="spot-watch", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=self.imds.timeout * 3 + 1)

    def _run(self) -> None:
        while True:
            self.poll()
            if self._done.wait(self.poll_seconds):
                return
