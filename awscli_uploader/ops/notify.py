"""systemd's readiness protocol (sd_notify): one datagram to `$NOTIFY_SOCKET`.

A unit of `Type=notify` is started only once the daemon says `READY=1`, so that
`systemctl start` (and whatever waits on it, such as a deploy's signal) means the daemon
holds its root and is about to scan, not that a process was forked.
"""

from __future__ import annotations

import socket


def notify(socket_path: str | None, message: str) -> str | None:
    """Send `message` (such as "READY=1") to systemd's notification socket; why it could
    not be sent, or None when it was or there is none (not run by systemd)."""
    if not socket_path:
        return None
    # an abstract socket is given as @name: its address begins with a NUL byte
    address = "\0" + socket_path[1:] if socket_path.startswith("@") else socket_path
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
    except OSError as exc:
        return exc.strerror or str(exc)
    return None
