"""One daemon per root: an exclusive lock in the root's own state directory.

The kernel drops the lock when its holder dies, so a crash never blocks a
restart; `status` asks the same lock who holds it, without taking it.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from .errors import AlreadyRunning, ConfigError


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
