"""The daemon loop: the root's lock, a scan every interval, clean stop on signals.

On EC2 the sleep between scans polls the spot interruption notice, and a
notice triggers an immediate scan so finished files leave before the instance.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from types import FrameType

from .config import Config
from .errors import ConfigError
from .imds import Imds
from .lock import root_lock
from .names import display
from .settle import Trash, restore_trash
from .stats import Stats
from .transfer import clean_staging
from .uploader import Uploader

SPOT_POLL_SECONDS = 5.0
SPOT_DEFAULT_NOTICE = 120.0  # AWS gives two minutes
SPOT_SAFETY = 10.0
ROOT_POLL_SECONDS = 5.0


@dataclass
class Daemon:
    config: Config
    uploader: Uploader
    log: logging.Logger
    imds: Imds | None = None  # set on EC2: spot notices are polled while sleeping
    _spot_seen: bool = False

    @property
    def stop(self) -> threading.Event:
        """The event that stops the loop and the scan: the uploader's own."""
        return self.uploader.stop

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT: finish the current step, then exit; a second one exits at once."""

        def handler(signum: int, frame: FrameType | None) -> None:
            if self.stop.is_set():
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)
                return
            self.log.info("%s received: finishing the current step", signal.Signals(signum).name)
            self.stop.set()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def run_once(self) -> Stats:
        with root_lock(self.config.state_dir) as problem:
            self._recover(problem)
            return self.uploader.scan_once()

    def run_forever(self) -> None:
        if not self._wait_for_root():
            return
        with root_lock(self.config.state_dir) as problem:
            self._recover(problem)
            self.log.info(
                "watching %s every %gs (stability %gs)",
                self.config.root,
                self.config.interval,
                self.config.stability,
            )
            while not self.stop.is_set():
                if self.config.root.is_dir():
                    self.uploader.scan_once()
                else:
                    self.log.warning("root %s is gone; waiting for it", self.config.root)
                self._sleep(self.config.interval)
        self.log.info("stopped")

    def _recover(self, problem: str | None) -> None:
        """Undo what a killed run left: staging links, and files renamed into the trash."""
        if problem is not None:
            self.log.warning(
                "%s; going on without it: files are uploaded one by one, status is not recorded",
                problem,
            )
            return
        clean_staging(self.config.state_dir)
        for path in restore_trash(Trash(self.config.root, self.config.state_dir / "trash")):
            self.log.warning("%s: restored from an interrupted delete", display(path))

    def _wait_for_root(self) -> bool:
        warned = False
        while not self.config.root.is_dir():
            if self.config.root.exists():
                raise ConfigError(f"root {self.config.root} is not a directory")
            if not warned:
                self.log.warning("root %s does not exist yet; waiting for it", self.config.root)
                warned = True
            if self.stop.wait(ROOT_POLL_SECONDS):
                return False
        return True

    def _sleep(self, seconds: float) -> None:
        """Sleep until the next scan, the stop signal, or a spot interruption notice."""
        deadline = time.monotonic() + seconds
        while not self.stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            if self.imds is None:
                self.stop.wait(left)
                continue
            self.stop.wait(min(left, SPOT_POLL_SECONDS))
            if self._spot_notice():
                return

    def _spot_notice(self) -> bool:
        if self._spot_seen or self.imds is None:
            return False
        notice = self.imds.spot_action()
        if notice is None:
            return False
        self._spot_seen = True
        left = seconds_until(notice.time, default=SPOT_DEFAULT_NOTICE) - SPOT_SAFETY
        self.uploader.set_deadline(time.monotonic() + left)
        self.log.warning(
            "spot interruption notice (%s at %s): scanning now, %.0fs for uploads",
            notice.action,
            notice.time,
            left,
        )
        return True


def seconds_until(timestamp: str, *, default: float, now: datetime | None = None) -> float:
    """Seconds from now to an IMDS time such as 2026-11-24T00:02:00Z (default if unparsable)."""
    try:
        when = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return default
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return (when - (now or datetime.now(timezone.utc))).total_seconds()
