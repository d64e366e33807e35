"""When an aws process is ended: API calls after a fixed time, uploads only when they stall.

A slow upload that moves must never be killed (a 2 GiB file on a 4 Mbit/s uplink takes over
an hour), while a hung one must be. Progress is the I/O the process does: rchar + wchar in
/proc/PID/io count the bytes it reads from the files it uploads and, over HTTPS, the TLS
stream it writes (OpenSSL uses read()/write() on the socket). Where /proc can't tell (macOS),
a generous size-based limit stands in.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

POLL_SECONDS = 2.0
STALL_SECONDS = 300.0  # an upload that did no I/O this long is hung
KILL_GRACE = 10.0  # seconds from SIGINT (the CLI cancels and aborts) to SIGKILL


@dataclass(frozen=True)
class Limit:
    """End the process `hard` seconds after it started, or once it did no I/O for `stall`
    seconds; None means no such limit."""

    hard: float | None = None
    stall: float | None = None


def upload_limit(
    total_bytes: int,
    *,
    watchable: bool,
    stall: float,
    max_seconds: float | None,
    base: float,
    min_rate: float,
) -> Limit:
    """A watched upload is ended only when it stalls; an unwatchable one after a time that a
    transfer at `min_rate` would need. An operator's `max_seconds` caps both."""
    if watchable:
        return Limit(hard=max_seconds, stall=stall)
    by_size = base + total_bytes / min_rate
    return Limit(hard=by_size if max_seconds is None else min(by_size, max_seconds))


def overdue(limit: Limit, *, running: float, idle: float) -> str | None:
    """Why a process running this long, without I/O for `idle` seconds, must end; else None."""
    if limit.hard is not None and running >= limit.hard:
        return f"still running after {limit.hard:g}s"
    if limit.stall is not None and idle >= limit.stall:
        return f"no progress for {idle:.0f}s"
    return None


def io_bytes(proc: Path, pid: int) -> int | None:
    """rchar + wchar of `pid` and its descendants; None when /proc has no io file for it."""
    total, todo, seen = 0, [pid], set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        try:
            text = (proc / str(current) / "io").read_text()
        except OSError:
            if current == pid:
                return None
            continue
        counts = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        total += int(counts.get("rchar", 0)) + int(counts.get("wchar", 0))
        todo += _children(proc, current)
    return total


def _children(proc: Path, pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in (proc / str(pid) / "task").iterdir():
            with contextlib.suppress(OSError, ValueError):
                found += [int(child) for child in (task / "children").read_text().split()]
    return found


class Watchdog(threading.Thread):
    """Ends the process group `pid` when `overdue` says so, or when `cancel` is called: first
    SIGINT, on which the AWS CLI cancels its transfers and aborts its multipart uploads,
    then SIGKILL if it is still there after `grace` seconds. `reason` then says why, and
    `cancelled` whether a cancel (a stop) ended it. Call `stop()` once the process ended."""

    def __init__(self, pid: int, limit: Limit, *, proc: Path, grace: float = KILL_GRACE) -> None:
        super().__init__(name=f"watchdog-{pid}", daemon=True)
        self.pid, self.limit, self.proc, self.grace = pid, limit, proc, grace
        self.reason: str | None = None
        self.cancelled = False
        self._done = threading.Event()  # the process has ended
        self._wake = threading.Event()
        self._cancel: str | None = None

    def stop(self) -> None:
        self._done.set()
        self._wake.set()

    def cancel(self, reason: str) -> None:
        """End the process now, cleanly (from another thread)."""
        self._cancel = reason
        self._wake.set()

    def run(self) -> None:
        start = moved = time.monotonic()
        seen = io_bytes(self.proc, self.pid) if self.limit.stall is not None else None
        while True:
            self._wake.wait(self._wait(time.monotonic() - start))
            self._wake.clear()
            if self._done.is_set():
                return
            if self._cancel is not None:
                self.cancelled = True
                self._end(self._cancel)
                return
            now = time.monotonic()
            if self.limit.stall is not None:
                current = io_bytes(self.proc, self.pid)
                if current is not None and current != seen:
                    seen, moved = current, now
            reason = overdue(self.limit, running=now - start, idle=now - moved)
            if reason is not None:
                self._end(reason)
                return

    def _end(self, reason: str) -> None:
        if self._done.is_set():
            return
        self.reason = reason
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGINT)
        if not self._done.wait(self.grace):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)

    def _wait(self, running: float) -> float:
        left = None if self.limit.hard is None else max(0.0, self.limit.hard - running)
        if self.limit.stall is None:
            return 86400.0 if left is None else left
        poll = min(POLL_SECONDS, self.limit.stall / 4)
        return poll if left is None else min(poll, left)


class Running:
    """The watchdogs of the aws processes running now, so that a stop can cancel them."""

    def __init__(self) -> None:
        self._dogs: set[Watchdog] = set()
        self._lock = threading.Lock()
        self._cancelled: str | None = None  # once a stop cancelled, every later one too

    def add(self, dog: Watchdog) -> None:
        with self._lock:
            self._dogs.add(dog)
            reason = self._cancelled
        if reason is not None:
            dog.cancel(reason)

    def discard(self, dog: Watchdog) -> None:
        with self._lock:
            self._dogs.discard(dog)

    def cancel(self, reason: str) -> int:
        """Cancel every running aws process (SIGINT, SIGKILL after the grace), and every
        one started from now on; how many were running."""
        with self._lock:
            self._cancelled = reason
            dogs = list(self._dogs)
        for dog in dogs:
            dog.cancel(reason)
        return len(dogs)
