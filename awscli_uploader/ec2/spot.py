"""Spot interruptions and the instance's Auto Scaling life: watch the metadata service
for the interruption notice, the rebalance recommendation and the target lifecycle state,
and say when to drain and by when uploads must be verified (only a notice sets a deadline;
which files fit before it is the scan's decision, scan/deadline.py)."""

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
LIFECYCLE_PATH = "autoscaling/target-lifecycle-state"
REBALANCE_WINDOW = 600.0  # seconds a rebalance recommendation drains: then the interval again


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
    """Polls the spot interruption notice, the rebalance recommendation and (with a drain
    hook) the Auto Scaling target lifecycle state, in a thread of its own, so that news
    arriving during a long upload is seen within POLL_SECONDS.

    `draining` says the daemon should scan back to back: after a notice, while the group
    is terminating the instance, and for REBALANCE_WINDOW seconds after a new rebalance
    recommendation (AWS calls that an elevated risk, not an interruption). Only a notice
    sets a deadline (`on_deadline`: the time.monotonic() by which uploads must be verified;
    `on_notice`: the same, once). `alert` is set whenever a drain starts; `on_ending` is told
    why, once, when the instance is going (a notice, or the group terminating it: not a
    rebalance).
    """

    imds: Imds
    log: logging.Logger
    on_deadline: Callable[[float | None], None]
    poll_seconds: float = POLL_SECONDS
    on_notice: Callable[[float], None] | None = None  # the interruption's own deadline
    lifecycle: bool = False  # an Auto Scaling drain hook waits on this instance's drain
    rebalance_window: float = REBALANCE_WINDOW
    on_ending: Callable[[str], None] | None = None

    def __post_init__(self) -> None:
        self.alert = threading.Event()
        self.notice: SpotNotice | None = None
        self.rebalance: str | None = None  # the last recommendation's time
        self.terminating = False  # the group's target lifecycle state is Terminated
        self.terminating_since: float | None = None  # time.monotonic() it was seen
        self._notice_deadline: float | None = None
        self._rebalance_until: float | None = None
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._ended = False

    @property
    def draining(self) -> bool:
        window = self._rebalance_until is not None and time.monotonic() < self._rebalance_until
        return self.notice is not None or self.terminating or window

    def deadline(self) -> float | None:
        """The interruption notice's deadline; none without a notice."""
        return self._notice_deadline

    def poll(self) -> None:
        """Ask the metadata service once; start a drain on news."""
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
                self._ending(f"spot interruption notice: {notice.action} at {notice.time}")
                if self.on_notice is not None:
                    self.on_notice(self._notice_deadline)
        if self.notice is None:
            self._poll_rebalance()
        if self.lifecycle and not self.terminating:
            state = (self.imds.get(LIFECYCLE_PATH) or "").strip()
            if state == "Terminated":
                self.terminating, self.terminating_since = True, time.monotonic()
                self.log.warning(
                    "the Auto Scaling group is terminating this instance: draining the "
                    "backlog, then completing the lifecycle action"
                )
                self.alert.set()
                self._ending("the Auto Scaling group is terminating this instance")
        self.on_deadline(self.deadline())

    def _ending(self, reason: str) -> None:
        if not self._ended and self.on_ending is not None:
            self._ended = True
            self.on_ending(reason)

    def _poll_rebalance(self) -> None:
        found = parse_rebalance(self.imds.get(REBALANCE_PATH))
        if found is None or found == self.rebalance:
            return  # none, or the one already drained for (the service keeps showing it)
        self.rebalance = found
        self._rebalance_until = time.monotonic() + self.rebalance_window
        self.log.warning(
            "spot rebalance recommendation (at %s): draining for %.0fs, then back to the "
            "interval; a deadline comes only with an interruption notice",
            found,
            self.rebalance_window,
        )
        self.alert.set()

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
