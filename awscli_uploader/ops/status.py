"""`awscli-uploader status`: the backlog, the daemon that holds the root, and its last scan.

The daemon writes its last scan's summary atomically into the root's state
directory; `status` reads it, walks the tree, and asks the lock who holds it.
It needs no AWS credentials and no AWS CLI, and never holds the lock.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from typing import Any

from .. import __version__
from ..config import Config
from ..local.lock import lock_holder
from ..local.state import StateDir
from ..model import NS
from ..scan.record import Stats
from .backlog import Backlog, backlog


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="seconds")


def settings_record(config: Config) -> dict[str, Any]:
    """The settings that shape the backlog, so `status` can use the daemon's own."""
    return {
        "stability": config.stability,
        "excludes": [pattern.text for pattern in config.excludes.patterns],
        "bucket_map": [f"{directory}={bucket}" for directory, bucket in config.bucket_map.pairs],
    }


def last_scan_record(
    stats: Stats, config: Config, *, credentials_valid: bool | None, pid: int
) -> dict[str, Any]:
    """What the daemon leaves behind after a scan, for `status`."""
    return {
        "version": __version__,
        "pid": pid,
        "mode": "once" if config.once else "daemon",
        "settings": settings_record(config),
        "started": round(stats.started, 3),
        "started_at": iso(stats.started),
        "seconds": round(stats.seconds, 3),
        **stats.record(),
        "credentials_valid": credentials_valid,
    }


def read_last_scan(state: StateDir) -> dict[str, Any] | None:
    """The last scan's record, None when there is none, or {"error": ...} when unreadable."""
    path = state.last_scan
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        return {"error": f"cannot read {path}: {exc.strerror}"}
    try:
        data = json.loads(text)
    except ValueError:
        return {"error": f"{path} is not valid JSON"}
    return data if isinstance(data, dict) else {"error": f"{path} is not a record"}


def recorded_settings(state: StateDir) -> dict[str, Any]:
    """The settings the daemon recorded at its last scan ({} when none)."""
    scan = read_last_scan(state) or {}
    settings = scan.get("settings")
    return settings if isinstance(settings, dict) else {}


def _backlog_entry(item: Backlog, now_ns: int) -> dict[str, Any]:
    return {
        "bucket": item.bucket,
        "directory": item.directory,
        "files": item.files,
        "bytes": item.bytes,
        "unstable": item.unstable,
        "oldest_age_seconds": round(item.oldest_age(now_ns), 1) if item.files else None,
        "problem": item.problem,
    }


def gather(config: Config, *, now_ns: int) -> dict[str, Any]:
    """Everything `status` shows, as plain data (printed as JSON by --json)."""
    holder = lock_holder(config.state)
    last_scan = read_last_scan(config.state)
    items = backlog(config, now_ns=now_ns)
    return {
        "root": os.fspath(config.root.resolve()),
        "time": iso(now_ns / NS),
        "daemon": {
            "running": holder is not None,
            "pid": holder if holder is not None and holder > 0 else None,
        },
        "settings": settings_record(config),
        "last_scan": last_scan,
        "backlog": [_backlog_entry(item, now_ns) for item in items],
        "total": {
            "files": sum(i.files for i in items),
            "bytes": sum(i.bytes for i in items),
            "unstable": sum(i.unstable for i in items),
        },
    }


def human_bytes(size: float) -> str:
    """1536 -> '1.5 KiB'; bytes below 1 KiB as a whole number."""
    if size < 1024:
        return f"{int(size)} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        size /= 1024
        if size < 1024 or unit == "TiB":
            break
    return f"{size:.1f} {unit}"


def human_age(seconds: float | None) -> str:
    """65 -> '1m05s', 7300 -> '2h01m', 90000 -> '1d01h'; '-' for None (nothing waiting)."""
    if seconds is None:
        return "-"
    whole = max(0, int(seconds))
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def _last_scan_lines(scan: dict[str, Any] | None, now: float) -> list[str]:
    if scan is None:
        return ["last scan:  none recorded yet"]
    if "error" in scan:
        return [f"last scan:  {scan['error']}"]
    ago = human_age(now - float(scan.get("started", now)))
    lines = [
        f"last scan:  {scan.get('started_at', '?')} ({ago} ago, {scan.get('mode', '?')}, "
        f"pid {scan.get('pid', '?')}), took {float(scan.get('seconds', 0)):.1f}s",
        f"            uploaded {scan.get('uploaded', 0)} "
        f"({human_bytes(scan.get('uploaded_bytes', 0))}), "
        f"already present {scan.get('present', 0)}, unstable {scan.get('unstable', 0)}, "
        f"failed {scan.get('failed', 0)}, ignored {scan.get('ignored', 0)}, "
        f"excluded {scan.get('excluded', 0)}",
    ]
    valid = scan.get("credentials_valid")
    word = "not checked yet" if valid is None else "valid" if valid else "NOT valid"
    lines.append(f"credentials: {word} at the last scan")
    return lines


def render_text(report: dict[str, Any]) -> str:
    """The human view of `gather`'s report."""
    now = datetime.fromisoformat(report["time"]).timestamp()
    daemon = report["daemon"]
    pid = daemon["pid"] or "unknown"
    running = f"running, pid {pid}" if daemon["running"] else "not running"
    lines = [f"root:       {report['root']}", f"daemon:     {running}"]
    lines += _last_scan_lines(report["last_scan"], now)
    settings = report["settings"]
    filters = [f"exclude {pattern!r}" for pattern in settings["excludes"]]
    filters += [f"map {entry}" for entry in settings["bucket_map"]]
    if filters:
        lines.append(f"filters:    {', '.join(filters)}")
    rows = [("BUCKET", "FILES", "BYTES", "OLDEST", "UNSTABLE", "NOTE")]
    for item in report["backlog"]:
        if item["problem"]:
            note = item["problem"].split(": ")[0] + "; stays local"
        elif item["directory"] != item["bucket"]:
            note = f"from {item['directory']}/"
        else:
            note = ""
        rows.append(
            (
                item["bucket"],
                str(item["files"]),
                human_bytes(item["bytes"]),
                human_age(item["oldest_age_seconds"]),
                str(item["unstable"]),
                note,
            )
        )
    total = report["total"]
    rows.append(
        ("total", str(total["files"]), human_bytes(total["bytes"]), "", str(total["unstable"]), "")
    )
    widths = [max(len(row[col]) for row in rows) for col in range(5)]
    lines.append("")
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [row[c].rjust(widths[c]) for c in range(1, 5)]
        lines.append(("  ".join(cells) + "  " + row[5]).rstrip())
    return "\n".join(lines)
