"""The records every phase shares: a candidate file, its identity, S3's object, a verdict,
and the outcome a phase returns for a file (or a bucket's batch of files).

Phases return outcomes and never log or count; scan/record.py turns them into
counts, log lines and what the observers see, in one place. This module is the
bottom of the package's layers: it imports nothing but the name rules.
"""

from __future__ import annotations

import enum
import logging
import os
from pathlib import Path
from typing import NamedTuple

from .names import display

NS = 1_000_000_000  # nanoseconds in a second
MIB = 1024 * 1024


class Candidate(NamedTuple):
    """A regular, stable file with a valid bucket and key."""

    path: Path
    bucket: str
    key: str
    size: int
    mtime_ns: int


class SkipKind(enum.Enum):
    UNSTABLE = "unstable"
    IGNORED = "ignored"
    INVALID = "invalid"
    EXCLUDED = "excluded"  # by an operator's --exclude: never uploaded, deleted or warned about
    SKEWED = "skewed"  # changed "in the future": another clock; waits on the daemon's own


class Skipped(NamedTuple):
    path: Path
    kind: SkipKind
    reason: str
    bucket: str = ""  # the bucket its directory stands for, "" above any bucket
    ready_in: float | None = None  # seconds until ready if it stays as it is, when short
    files: int = 1  # of a directory: files passed over as not yet due, or entries excluded


class Identity(NamedTuple):
    """What must not change between hashing a file and deleting it."""

    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, info: os.stat_result) -> Identity:
        return cls(info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


class Proven(NamedTuple):
    """A file whose bytes S3 holds, as it was when hashed: settle may delete it."""

    item: Candidate
    identity: Identity
    uploaded: bool  # by this scan; else it was already in S3


class RemoteObject(NamedTuple):
    """What S3 holds under a key: from a listing (size, ETag) or head-object (all)."""

    key: str
    size: int
    etag: str
    sha256: str | None = None  # from our metadata; only head-object returns it
    encryption: str | None = None  # ServerSideEncryption, or "sse-c"


class Verdict(enum.Enum):
    """Does S3's object hold exactly the file's bytes?"""

    SAME = "same"
    DIFFERENT = "different"
    UNPROVABLE = "unprovable"  # the ETag is no digest of the content (SSE-KMS, SSE-C)
    UNKNOWN_LAYOUT = "unknown layout"  # the ETag's parts are not the layout the CLI makes


class Count(enum.Enum):
    """The scan's counters an outcome adds to."""

    UPLOADED = "uploaded"
    PRESENT = "present"
    UNSTABLE = "unstable"
    IGNORED = "ignored"
    FAILED = "failed"
    EXCLUDED = "excluded"


DEBUG, INFO, WARN, ERROR = logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR


class Kind(enum.Enum):
    """Each kind: the counter it adds to (or None), its log level, its log line."""

    UPLOADED = (Count.UPLOADED, INFO, "{url}: uploaded {size} bytes, verified, deleted")
    PRESENT = (
        Count.PRESENT,
        INFO,
        "{url}: already in S3 with the same content; deleted local copy",
    )
    WOULD_DELETE = (
        Count.PRESENT,
        INFO,
        "{url}: already in S3 with the same content; would delete local copy",
    )
    WOULD_UPLOAD = (None, INFO, "{url}: would upload {size} bytes")
    REPLACING = (None, WARN, "{url}: S3 holds different content ({reason}); overwriting it")
    EXISTS = (
        Count.FAILED,
        ERROR,
        "{url}: S3 holds different content ({reason}); kept (--if-exists keep)",
    )
    WOULD_READ_BACK = (
        None,
        INFO,
        "{url}: S3's object can't be proven by its ETag ({reason}); would read it back",
    )
    READ_BACK_FAILED = (
        Count.FAILED,
        ERROR,
        "{url}: cannot read S3's object back to compare it ({reason}); kept",
    )
    UNSTABLE = (Count.UNSTABLE, WARN, "{path}: {reason}")
    CHANGED = (Count.UNSTABLE, WARN, "{path}: {reason}; kept for the next scan")
    SKEWED = (Count.UNSTABLE, WARN, "{path}: {reason}")
    SKEW_SEEN = (None, WARN, "{path}: {reason}")  # reported while the scan waits it out
    IGNORED = (Count.IGNORED, WARN, "{path}: {reason}")
    EXCLUDED = (Count.EXCLUDED, DEBUG, "{path}: {reason}")
    INVALID = (Count.FAILED, ERROR, "{path}: {reason}")
    NOT_DELETED = (Count.FAILED, WARN, "{path}: {reason}")
    OPEN = (Count.UNSTABLE, WARN, "{path}: {reason}")
    STILL_OPEN = (Count.UNSTABLE, DEBUG, "{path}: {reason}")
    NO_LEASE = (None, DEBUG, "{path}: {reason}")
    UNREADABLE = (Count.FAILED, ERROR, "{path}: {reason}")
    NO_STAGING = (None, WARN, "s3://{bucket}: {reason}")
    MISSING = (Count.FAILED, ERROR, "{url}: not in S3 after the upload; kept")
    MISMATCH = (Count.FAILED, ERROR, "{url}: S3 does not match after upload ({reason}); kept")
    UPLOAD_FAILED = (Count.FAILED, ERROR, "{url}: upload failed: {reason}")
    LATE = (None, WARN, "{url}: no time to upload before the interruption; kept")
    HEAD_FAILED = (None, WARN, "{url}: head-object failed: {reason}")
    # about a bucket's batch: `files` files at once
    LIST_FAILED = (
        Count.FAILED,
        ERROR,
        "s3://{bucket}: cannot list {reason}; {files} files stay local",
    )
    BATCH_FAILED = (
        Count.FAILED,
        ERROR,
        "s3://{bucket}: upload of {files} files failed {reason}; they stay local",
    )
    CLI_ERROR = (None, ERROR, "{reason}")
    ABORTED = (None, INFO, "s3://{bucket}: aborted {files} incomplete multipart uploads ({reason})")
    NOT_ABORTED = (
        None,
        WARN,
        "s3://{bucket}: cannot look for incomplete multipart uploads: {reason}",
    )
    OPAQUE = (None, INFO, "s3://{bucket}: {reason} ETags; proving content by SHA-256")
    STOPPED = (None, INFO, "stopping: {files} files in {bucket} left for the next run")
    DIR_REMOVED = (None, DEBUG, "{path}: removed empty directory")

    def __init__(self, count: Count | None, level: int, template: str) -> None:
        self.count = count
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
    return Outcome(_SKIPS[item.kind], item.bucket, None, item.path, 0, item.reason, item.files)
