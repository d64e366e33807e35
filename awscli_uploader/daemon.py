"""The daemon loop: one lock per root, a scan every interval, clean stop on signals.

On EC2 the sleep between scans polls the spot interruption notice, and a
notice triggers an immediate scan so finished files leave before the instance.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import signal
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import IO

from .config import Config
from .errors import AlreadyRunning, ConfigError
from .imds import Imds
from .uploader import Stats, Uploader, clean_staging

SPOT_POLL_SECONDS = 5.0
SPOT_DEFAULT_NOTICE = 120.0  # AWS gives two minutes
SPOT_SAFETY = 10.0
ROOT_POLL_SECONDS = 5.0


@contextmanager
def root_lock(state_dir: Path) -> Iterator[None]:
    """Hold the one lock of this root directory, or raise AlreadyRunning.

    The lock lives in the root's own state directory, so a symlinked or
    relative spelling of the same root meets the same lock; the kernel drops
    it when the holder dies, so a crash never blocks a restart.
    """
    try:
        state_dir.mkdir(mode=0o700, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create state directory {state_dir}: {exc.strerror}") from exc
    info = os.lstat(state_dir)
    if not stat.S_ISDIR(info.st_mode):
        raise ConfigError(f"{state_dir} is not a directory; remove it and start again")
    if info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise ConfigError(
            f"{state_dir} is owned by another user or writable by others; "
            "remove it (the daemon recreates it, mode 0700) and start again"
        )
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(state_dir / "lock", flags, 0o600)
    handle: IO[str] = os.fdopen(fd, "r+")
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            holder = handle.read().strip() or "unknown"
            raise AlreadyRunning(
                f"another awscli-uploader (pid {holder}) is already working on "
                f"{state_dir.parent}; stop it first (scripts/local_kill.sh)"
            ) from exc
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
    finally:
        handle.close()


def lock_holder(state_dir: Path) -> int | None:
    """PID of the daemon that holds this root's lock, or None."""
    try:
        fd = os.open(state_dir / "lock", os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    with os.fdopen(fd) as handle:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            text = handle.read().strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None


@dataclass
class Daemon:
    config: Config
    uploader: Uploader
    log: logging.Logger
    imds: Imds | None = None  # set on EC2: spot notices are polled while sleeping
    stop: threading.Event = field(default_factory=threading.Event)
    _spot_seen: bool = False

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT: finish the current step, then exit; a second one exits at once."""

        def handler(signum: int, frame: FrameType | None) -> None:
            if self.stop.is_set():
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)
                return
            self.log.info("%s received: finishing the current step", signal.Signals(signum).name)
            self.stop.set()
            self.uploader.stop.set()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def run_once(self) -> Stats:
        with root_lock(self.config.state_dir):
            clean_staging(self.config.state_dir)
            return self.uploader.scan_once()

    def run_forever(self) -> None:
        if not self._wait_for_root():
            return
        with root_lock(self.config.state_dir):
            clean_staging(self.config.state_dir)
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
        self.uploader.deadline = time.monotonic() + left
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
