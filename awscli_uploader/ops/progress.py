"""`--once` on a terminal: one progress line for the batch (files, bytes, rate, ETA).

Never in daemon mode, with JSON logs, or when stdout is not a terminal. The
AWS CLI uploads each bucket in one quiet call, so the line advances as each
bucket's files are handled; a ticker keeps the elapsed time moving meanwhile.
Log lines are printed above it: the line is cleared, the record written,
the line drawn again.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TextIO

from ..model import Candidate
from ..scan.record import ScanObserver, Stats
from .status import human_bytes

BAR_WIDTH = 16
TICK_SECONDS = 0.5
CLEAR_LINE = "\r\x1b[K"


def show_progress(*, once: bool, tty: bool, log_format: str) -> bool:
    """A progress line only for an interactive one-off run with the text log format."""
    return once and tty and log_format == "text"


def clock(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def format_line(
    *,
    done_files: int,
    total_files: int,
    done_bytes: int,
    total_bytes: int,
    elapsed: float,
    label: str = "",
) -> str:
    """The progress line: bar, percent, files, bytes, rate, elapsed time and ETA.

    Progress is by bytes, or by files when all files are empty; the rate and
    ETA are unknown until some bytes are done.
    """
    if total_bytes:
        fraction = done_bytes / total_bytes
    else:
        fraction = done_files / total_files if total_files else 1.0
    fraction = min(max(fraction, 0.0), 1.0)
    filled = int(fraction * BAR_WIDTH)
    bar = "#" * filled + "-" * (BAR_WIDTH - filled)
    rate = done_bytes / elapsed if elapsed > 0 and done_bytes else None
    eta = (total_bytes - done_bytes) / rate if rate else None
    if done_files >= total_files:
        eta = 0.0
    speed = f"{human_bytes(rate)}/s" if rate else "-/s"
    line = (
        f"[{bar}] {int(fraction * 100):3d}% {done_files}/{total_files} files "
        f"{human_bytes(done_bytes)}/{human_bytes(total_bytes)} {speed} "
        f"{clock(elapsed)} ETA {clock(eta)}"
    )
    return f"{line} {label}" if label else line


class _AboveTheLine(logging.Handler):
    """Writes a log record above the progress line."""

    def __init__(self, inner: logging.Handler, progress: Progress) -> None:
        super().__init__(inner.level)
        self.inner = inner
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        with self.progress.lock:
            self.progress.stream.write(CLEAR_LINE)
            self.inner.handle(record)
            self.progress.draw_locked()


class Progress(ScanObserver):
    def __init__(
        self,
        stream: TextIO,
        logger: logging.Logger,
        *,
        now: Callable[[], float] = time.monotonic,
        tick: float = TICK_SECONDS,
    ) -> None:
        self.stream = stream
        self.logger = logger
        self.now = now
        self.tick = tick
        self.lock = threading.RLock()
        self.total_files = self.total_bytes = self.done_files = self.done_bytes = 0
        self.label = ""
        self.started = 0.0
        self._handlers: list[logging.Handler] = []
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    @property
    def active(self) -> bool:
        return bool(self._handlers)

    def batch(self, by_bucket: Mapping[str, Sequence[Candidate]]) -> None:
        files = [f for group in by_bucket.values() for f in group]
        if not files:
            return
        self.total_files = len(files)
        self.total_bytes = sum(f.size for f in files)
        self.started = self.now()
        self._handlers = list(self.logger.handlers)
        self.logger.handlers = [_AboveTheLine(h, self) for h in self._handlers]
        self._stop.clear()
        self._ticker = threading.Thread(target=self._tick, name="progress", daemon=True)
        self._ticker.start()
        self.draw()

    def bucket_started(self, bucket: str, files: Sequence[Candidate]) -> None:
        self.label = f"s3://{bucket}"
        self.draw()

    def bucket_done(self, bucket: str, files: Sequence[Candidate]) -> None:
        with self.lock:
            self.done_files += len(files)
            self.done_bytes += sum(f.size for f in files)
        self.draw()

    def scanned(self, stats: Stats) -> None:
        if not self.active:
            return
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        with self.lock:
            self.label = ""
            self.draw_locked()
            self.stream.write("\n")
            self.stream.flush()
            self.logger.handlers = self._handlers
            self._handlers = []

    def draw(self) -> None:
        with self.lock:
            self.draw_locked()

    def draw_locked(self) -> None:
        if not self.active:
            return
        line = format_line(
            done_files=self.done_files,
            total_files=self.total_files,
            done_bytes=self.done_bytes,
            total_bytes=self.total_bytes,
            elapsed=self.now() - self.started,
            label=self.label,
        )
        width = shutil.get_terminal_size().columns - 1  # a wrapped line could not be cleared
        self.stream.write(CLEAR_LINE + line[: max(width, 20)])
        self.stream.flush()

    def _tick(self) -> None:
        while not self._stop.wait(self.tick):
            self.draw()
