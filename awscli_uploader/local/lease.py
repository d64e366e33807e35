"""The open-writer guard: a Linux read lease proves that no process has a file open
for writing, and the kernel breaks it when one opens the file for writing later.

`fcntl(F_SETLEASE, F_RDLCK)` is refused (EAGAIN) while any descriptor has the
file open for writing. A lease needs the file's owner or CAP_LEASE; where none
can be had (another owner, NFS, not Linux) the guard says so and the caller
keeps the rule that the file's identity must not change.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import fcntl
import os
import signal
from collections.abc import Iterator
from pathlib import Path

F_SETLEASE = getattr(fcntl, "F_SETLEASE", 1024)
F_GETLEASE = getattr(fcntl, "F_GETLEASE", 1025)
CAP_LEASE = 28
ON_LINUX = hasattr(fcntl, "F_SETLEASE") or os.uname().sysname == "Linux"


class Guard(enum.Enum):
    HELD = "held"  # no writer now; a later one breaks the lease
    WRITER = "writer"  # some process has the file open for writing
    UNAVAILABLE = "unavailable"  # no lease here: not the owner and no CAP_LEASE, NFS, not Linux
    UNREADABLE = "unreadable"  # the daemon may not even open it


def ignore_break_signal() -> None:
    """A broken lease signals its holder with SIGIO, whose default ends the process;
    the guard asks the kernel (F_GETLEASE) instead. Call from the main thread."""
    if hasattr(signal, "SIGIO"):
        signal.signal(signal.SIGIO, signal.SIG_IGN)


def has_cap_lease(status: str) -> bool:
    """Whether a /proc/PID/status text grants CAP_LEASE in the effective set."""
    for line in status.splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> CAP_LEASE & 1)
    return False


def describe() -> str:
    """One line for the start: which files the guard can protect."""
    if not ON_LINUX:
        return "no read leases on this system: a file still open for writing is not detected"
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        status = ""
    if has_cap_lease(status):
        return "read leases (CAP_LEASE): a file still open for writing is never deleted"
    return (
        f"read leases only on files owned by uid {os.geteuid()} (no CAP_LEASE): for files of "
        "other users a file still open for writing is not detected"
    )


@contextlib.contextmanager
def read_lease(path: Path) -> Iterator[tuple[Guard, int]]:
    """Open `path` (never following a symlink) and hold a read lease on it while inside.

    Yields the guard and the descriptor, on which the caller checks the inode.
    Raises OSError when the file can't be opened (FileNotFoundError: it vanished).
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    guard = Guard.UNAVAILABLE
    try:
        try:
            fcntl.fcntl(fd, F_SETLEASE, fcntl.F_RDLCK)
            guard = Guard.HELD
        except OSError as exc:
            if exc.errno == errno.EAGAIN:
                guard = Guard.WRITER
        yield guard, fd
    finally:
        if guard is Guard.HELD:
            with contextlib.suppress(OSError):
                fcntl.fcntl(fd, F_SETLEASE, fcntl.F_UNLCK)
        os.close(fd)


def broken(fd: int) -> bool:
    """Whether a writer has opened the file since the lease was taken."""
    try:
        return bool(fcntl.fcntl(fd, F_GETLEASE) != fcntl.F_RDLCK)
    except OSError:
        return True


def writer_state(path: Path) -> Guard:
    """A quick probe: does some process have `path` open for writing now?"""
    try:
        with read_lease(path) as (guard, _):
            return guard
    except (PermissionError, FileNotFoundError) as exc:
        return Guard.UNREADABLE if isinstance(exc, PermissionError) else Guard.UNAVAILABLE
    except OSError:
        return Guard.UNAVAILABLE
