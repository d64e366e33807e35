"""The daemon loop: one lock per root, a scan every interval, clean stop on signals.

On EC2 a SpotWatch thread polls the spot interruption notice and the rebalance
recommendation, during scans too; either one ends the sleep and makes the loop
scan back to back, so finished files leave before the instance.
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
from pathlib import Path
from types import FrameType
from typing import IO

from .config import Config
from .errors import AlreadyRunning, ConfigError
from .imds import Imds
from .spot import SpotWatch, seconds_until
from .uploader import Stats, Uploader, clean_staging

ROOT_POLL_SECONDS = 5.0
DRAIN_PAUSE_SECONDS = 1.0  # between scans once a spot drain is on
WAKE_SECONDS = 0.5  # how often a sleep looks at the spot watch

__all__ = ["Daemon", "lock_holder", "root_lock", "seconds_until"]


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
    imds: Imds | None = None  # set on EC2: spot notices and rebalances are polled
    stop: threading.Event = field(default_factory=threading.Event)
    spot: SpotWatch | None = None

    def __post_init__(self) -> None:
        if self.imds is not None and self.spot is None:
            self.spot = SpotWatch(self.imds, self.log, self.uploader.set_deadline)

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
            if self.spot is not None:
                self.spot.start()
            try:
                while not self.stop.is_set():
                    if self.config.root.is_dir():
                        self.uploader.scan_once()
                    else:
                        self.log.warning("root %s is gone; waiting for it", self.config.root)
                    draining = self.spot is not None and self.spot.draining
                    self._sleep(DRAIN_PAUSE_SECONDS if draining else self.config.interval)
            finally:
                if self.spot is not None:
                    self.spot.close()
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
        """Sleep until the next scan, the stop signal, or the start of a spot drain."""
        deadline = time.monotonic() + seconds
        watch = self.spot if self.spot is not None and not self.spot.draining else None
        while not self.stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0 or (watch is not None and watch.draining):
                return
            self.stop.wait(left if watch is None else min(left, WAKE_SECONDS))
