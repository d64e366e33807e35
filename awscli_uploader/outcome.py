"""What a scan phase says happened to a file (or to a bucket's batch of files).

Phases return outcomes and never log or count; record.py turns them into
counts, log lines and what the observers see, in one place.
"""

from __future__ import annotations

import enum
import logging
from pathlib import Path
from typing import NamedTuple

from .names import display
from .scanner import Candidate, SkipKind, Skipped

DEBUG, INFO, WARN, ERROR = logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR


class Kind(enum.Enum):
    """Each kind: the counter it adds to (or None), its log level, its log line."""

    UPLOADED = ("uploaded", INFO, "{url}: uploaded {size} bytes, verified, deleted")
    PRESENT = ("present", INFO, "{url}: already in S3 with the same content; deleted local copy")
    WOULD_DELETE = (
        "present",
        INFO,
        "{url}: already in S3 with the same content; would delete local copy",
    )
    WOULD_UPLOAD = (None, INFO, "{url}: would upload {size} bytes")
    REPLACING = (None, WARN, "{url}: S3 holds different content ({reason}); overwriting it")
    EXISTS = (
        "failed",
        ERROR,
        "{url}: S3 holds different content ({reason}); kept (--if-exists keep)",
    )
    UNSTABLE = ("unstable", WARN, "{path}: {reason}")
    CHANGED = ("unstable", WARN, "{path}: {reason}; kept for the next scan")
    SKEWED = ("unstable", WARN, "{path}: {reason}")
    SKEW_SEEN = (None, WARN, "{path}: {reason}")  # reported while the scan waits it out
    IGNORED = ("ignored", WARN, "{path}: {reason}")
    EXCLUDED = ("excluded", DEBUG, "{path}: {reason}")
    INVALID = ("failed", ERROR, "{path}: {reason}")
    NOT_DELETED = ("failed", WARN, "{path}: {reason}")
    OPEN = ("unstable", WARN, "{path}: {reason}")
    STILL_OPEN = ("unstable", DEBUG, "{path}: {reason}")
    NO_LEASE = (None, DEBUG, "{path}: {reason}")
    UNREADABLE = ("failed", ERROR, "{path}: {reason}")
    NO_STAGING = (None, WARN, "s3://{bucket}: {reason}")
    MISSING = ("failed", ERROR, "{url}: not in S3 after the upload; kept")
    MISMATCH = ("failed", ERROR, "{url}: S3 does not match after upload ({reason}); kept")
    UPLOAD_FAILED = ("failed", ERROR, "{url}: upload failed: {reason}")
    LATE = (None, WARN, "{url}: no time to upload before the interruption; kept")
    HEAD_FAILED = (None, WARN, "{url}: head-object failed: {reason}")
    # about a bucket's batch: `files` files at once
    LIST_FAILED = ("failed", ERROR, "s3://{bucket}: cannot list {reason}; {files} files stay local")
    BATCH_FAILED = (
        "failed",
        ERROR,
        "s3://{bucket}: upload of {files} files failed {reason}; they stay local",
    )
    CLI_ERROR = (None, ERROR, "{reason}")
    OPAQUE = (None, INFO, "s3://{bucket}: {reason} ETags; proving content by SHA-256")
    STOPPED = (None, INFO, "stopping: {files} files in {bucket} left for the next run")
    DIR_REMOVED = (None, DEBUG, "{path}: removed empty directory")

    def __init__(self, counter: str | None, level: int, template: str) -> None:
        self.counter = counter
        self.level = level
        self.template = template


class Outcome(NamedTuple):
    kind: Kind
    bucket: str = ""
    key: str | None = None
    path: Path | None = None
    size: int = 0
    reason: str = ""
    files: int = 1  # how many files a bucket-level outcome stands for

    def message(self) -> str:
        url = display(f"s3://{self.bucket}/{self.key}") if self.key is not None else ""
        return self.kind.template.format(
            url=url,
            path=display(self.path) if self.path is not None else "",
            bucket=self.bucket,
            size=self.size,
            reason=self.reason,
            files=self.files,
        )

    def fields(self) -> dict[str, object]:
        """Structured fields of its log line (shown by --log-format json)."""
        if self.key is None:
            return {"bucket": self.bucket} if self.bucket else {}
        return {"bucket": self.bucket, "key": self.key, "bytes": self.size}


def of_file(kind: Kind, item: Candidate, reason: str = "", *, size: int | None = None) -> Outcome:
    """An outcome about one candidate file."""
    return Outcome(
        kind, item.bucket, item.key, item.path, item.size if size is None else size, reason
    )


def of_batch(kind: Kind, bucket: str, files: int, reason: str = "") -> Outcome:
    """An outcome about `files` files of a bucket at once."""
    return Outcome(kind, bucket, None, None, 0, reason, files)


_SKIPS = {
    SkipKind.UNSTABLE: Kind.UNSTABLE,
    SkipKind.SKEWED: Kind.SKEWED,
    SkipKind.IGNORED: Kind.IGNORED,
    SkipKind.EXCLUDED: Kind.EXCLUDED,
    SkipKind.INVALID: Kind.INVALID,
}


def of_skip(item: Skipped) -> Outcome:
    """The plan phase's verdict on a file that is not a candidate."""
    return Outcome(_SKIPS[item.kind], item.bucket, None, item.path, 0, item.reason)
