"""One daemon per root: an exclusive lock on the root directory itself.

The kernel drops the lock when its holder dies, so a crash never blocks a
restart; `status` asks the same lock who holds it, with a shared lock for a moment
(which is why root_lock tries for PROBE_WAIT before refusing).
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import AlreadyRunning, ConfigError
from .state import StateDir

NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})
PROBE_WAIT = 0.5  # seconds root_lock tries while another process only probes the lock


@contextmanager
def root_lock(state: StateDir) -> Iterator[str | None]:
    """Hold the one lock of `state.root`, or raise AlreadyRunning.

    The lock is on the root directory itself, so a symlinked or relative
    spelling of the same root meets the same lock, a full disk can't refuse it,
    and the kernel drops it when the holder dies. Yields None, or why the state
    directory can't be had (a full disk): the daemon then works without it.
    """
    root = state.root
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise ConfigError(f"cannot open the root {root}: {exc.strerror}") from exc
    try:
        _take(fd, state)
        problem = _prepare(state.path)
        if problem is None:
            _record_pid(state)
        yield problem
    finally:
        os.close(fd)


def refuse_if_held(state: StateDir) -> None:
    """Raise AlreadyRunning now if another daemon holds the root's lock, so that a refused
    start makes no aws call; the lock itself is taken later, by root_lock. The probe is
    `status`'s (a shared lock, dropped at once). Nothing to say about a root that does not
    exist yet: root_lock refuses then, once the root is there."""
    holder = lock_holder(state)
    if holder is not None:
        raise AlreadyRunning(_held(state, str(holder) if holder > 0 else "unknown"))


def _held(state: StateDir, holder: str) -> str:
    return (
        f"another awscli-uploader (pid {holder}) is already working on "
        f"{state.root}; stop it first (kill -TERM {holder}, or scripts/local_kill.sh)"
    )


def _take(fd: int, state: StateDir) -> None:
    """The exclusive lock, or AlreadyRunning. Tried for a moment: a probe (`status`, a
    starting daemon's refuse_if_held) holds a shared lock for a few microseconds."""
    deadline = time.monotonic() + PROBE_WAIT
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            if time.monotonic() >= deadline:
                raise AlreadyRunning(_held(state, _recorded_pid(state) or "unknown")) from exc
        time.sleep(0.05)


def _prepare(state_dir: Path) -> str | None:
    """Create the state directory (mode 0700) and check that it is ours alone."""
    try:
        state_dir.mkdir(mode=0o700, exist_ok=True)
    except OSError as exc:
        if exc.errno in NO_ROOM:
            return f"cannot create {state_dir}: {exc.strerror}"
        raise ConfigError(f"cannot create state directory {state_dir}: {exc.strerror}") from exc
    info = os.lstat(state_dir)
    if not stat.S_ISDIR(info.st_mode):
        raise ConfigError(f"{state_dir} is not a directory; remove it and start again")
    if info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise ConfigError(
            f"{state_dir} is owned by another user or writable by others; "
            "remove it (the daemon recreates it, mode 0700) and start again"
        )
    return None


def _record_pid(state: StateDir) -> None:
    """Best effort: `status` and a second daemon name the holder from this file."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(state.lock_file, flags, 0o600)
    except OSError:
        return
    with os.fdopen(fd, "w") as handle:
        handle.write(f"{os.getpid()}\n")


def _recorded_pid(state: StateDir) -> str | None:
    try:
        text = state.lock_file.read_text().strip()
    except OSError:
        return None
    return text if text.isdigit() else None


def lock_holder(state: StateDir) -> int | None:
    """PID of the daemon that holds this root's lock (-1 when unknown), or None."""
    try:
        fd = os.open(state.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                return None  # can't tell (no locks here): root_lock says what is wrong
            return int(_recorded_pid(state) or -1)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
