"""The transfer layer's private runtime directory, off the data root: where the layer, a
copy of credentials (s3/layer.py), lives for one upload call.

The data root may outlive the machine (an EBS volume kept after termination) or be shared
(NFS); a runtime directory does not: `$XDG_RUNTIME_DIR` is a per-user tmpfs emptied at
logout, and under the systemd unit /tmp is private to the unit and removed when it stops.
In a shared /tmp another user could create the directory first, or a symlink in its place,
so it is used only when it is a real directory of ours with mode 0700, in a parent that
nobody else can rename it out of (ours or root's, and sticky if others may write there).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path

NAME = "awscli-uploader"
_OWNED = re.compile(r"([1-9][0-9]*)-[0-9]+\.credentials")


class NotPrivate(OSError):
    """The directory is there but is not ours alone: it is not used."""


def private_dir(environ: Mapping[str, str], *, tmp: str, uid: int) -> Path:
    """`$XDG_RUNTIME_DIR/awscli-uploader` when that is set to an absolute path (the XDG
    spec ignores a relative one), else `TMP/awscli-uploader-UID`."""
    runtime = environ.get("XDG_RUNTIME_DIR", "")
    if os.path.isabs(runtime):
        return Path(runtime) / NAME
    return Path(tmp) / f"{NAME}-{uid}"


def layer_name(pid: int, n: int) -> str:
    """The name of process `pid`'s `n`th file in the directory."""
    return f"{pid}-{n}.credentials"


@contextlib.contextmanager
def opened(path: Path) -> Iterator[int]:
    """A descriptor of `path`, created (mode 0700) if missing; NotPrivate when it is a
    symlink, not a directory, not ours, not mode 0700, or in a parent another user could
    move it out of."""
    parent = os.stat(path.parent)  # a symlinked /tmp or runtime directory is its target
    uid = os.geteuid()
    if parent.st_uid not in (uid, 0) or (
        parent.st_mode & 0o022 and not parent.st_mode & stat.S_ISVTX
    ):
        raise NotPrivate(f"{path.parent} is another user's or writable by others, not sticky")
    created = False
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
        created = True
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise NotPrivate(f"{path} is a symlink or not a directory") from None
        raise
    try:
        if created:
            os.fchmod(fd, 0o700)  # the umask may have taken bits away
        info = os.fstat(fd)
        if info.st_uid != uid:
            raise NotPrivate(f"{path} is owned by uid {info.st_uid}, not by this user ({uid})")
        if stat.S_IMODE(info.st_mode) != 0o700:
            raise NotPrivate(f"{path} has mode {stat.S_IMODE(info.st_mode):04o}, not 0700")
        yield fd
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def clean(path: Path) -> list[str]:
    """At start: check the directory (as `opened`) and remove the files that processes now
    gone left in it, and this process's own pid's (a process before it of the same pid);
    another daemon's, on another root, stay. The names removed."""
    removed: list[str] = []
    with opened(path) as fd:
        for name in os.listdir(fd):
            match = _OWNED.fullmatch(name)
            if match is None:
                continue
            pid = int(match.group(1))
            if pid == os.getpid() or not _alive(pid):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name, dir_fd=fd)
                    removed.append(name)
    return removed
