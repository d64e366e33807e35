"""One bucket's context for a scan, shared by all its chunks: the AWS CLI, the part layout
the CLI makes, the if-exists policy, and whether the bucket's ETags prove anything."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..errors import AwsCliError
from ..local.state import StateDir
from ..model import Candidate, Identity, Kind, Outcome, RemoteObject
from ..s3.awscli import MAX_PUT_BYTES, AwsCli, ErrorKind, classify
from ..s3.layer import DEFAULT_CONCURRENCY
from ..s3.settings import MultipartSettings


@dataclass
class OpaqueBuckets:
    """Buckets whose ETags prove nothing (SSE-KMS, SSE-C): learned once, then kept for the
    daemon's life and, in the state directory, across restarts (thread-safe)."""

    state: StateDir | None = None
    known: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def load(cls, state: StateDir | None) -> OpaqueBuckets:
        return cls(state, state.opaque_buckets() if state is not None else set())

    def __contains__(self, bucket: object) -> bool:
        with self._lock:
            return bucket in self.known

    def add(self, bucket: str) -> bool:
        """Remember `bucket`; whether it is news."""
        with self._lock:
            if bucket in self.known:
                return False
            self.known.add(bucket)
        if self.state is not None:
            self.state.remember_opaque(bucket)
        return True


Sides = tuple[Identity, str, int]  # the file's identity, the object's ETag and size


@dataclass
class ReadBacks:
    """Objects read back under --if-exists keep and found to differ from their file: not
    read again (S3's egress, KMS's decrypts, the read's room on the writers' disk) while
    neither the file (inode, size, mtime, ctime: any write moves the ctime) nor the object
    (ETag, size) changes. For the daemon's life (thread-safe); a restart reads once more."""

    _different: dict[tuple[str, str], Sides] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # one read-back at a time across the buckets' threads: each checks the free space for
    # itself, and two at once could together take what each left for the writers
    reading: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @staticmethod
    def sides(item: Candidate, obj: RemoteObject) -> Sides | None:
        """Both sides as they are now (before a read-back), or None: the file is gone."""
        try:
            return Identity.of(os.stat(item.path)), obj.etag, obj.size
        except OSError:
            return None

    def known_different(self, item: Candidate, sides: Sides) -> bool:
        with self._lock:
            return self._different.get((item.bucket, item.key)) == sides

    def found(self, item: Candidate, sides: Sides, *, different: bool) -> None:
        with self._lock:
            if different:
                self._different[item.bucket, item.key] = sides
            else:
                self._different.pop((item.bucket, item.key), None)


@dataclass
class Missing:
    """What a listing answered when S3 said, in this scan, that the bucket does not exist:
    the bucket's files not yet sent then wait for the next scan without aws calls of their
    own. Only listings note it, as their errors carry no file names (an `s3 cp`'s name the
    files, which could spell the error's name). Read and written by the bucket's thread."""

    error: AwsCliError | None = None

    def seen(self, exc: AwsCliError) -> None:
        """Note a failed listing's error when it says the bucket does not exist."""
        if not exc.cancelled and classify(exc.stderr) is ErrorKind.NO_SUCH_BUCKET:
            self.error = exc


@dataclass(frozen=True)
class Target:
    cli: AwsCli
    bucket: str
    multipart: MultipartSettings = field(default_factory=MultipartSettings)
    keep_existing: bool = False  # --if-exists keep: never overwrite different content
    conditional: bool = False  # and the CLI can upload with If-None-Match (put-object)
    opaque_buckets: OpaqueBuckets = field(default_factory=OpaqueBuckets)
    read_backs: ReadBacks = field(default_factory=ReadBacks)  # keep: found different before
    max_concurrency: int = DEFAULT_CONCURRENCY  # requests in flight for many small files
    missing: Missing = field(default_factory=Missing)  # S3 said it does not exist (this scan)

    @property
    def opaque(self) -> bool:
        """Whether the bucket's ETags are known to prove nothing (KMS, SSE-C)."""
        return self.bucket in self.opaque_buckets

    def put_new(self, size: int) -> bool:
        """Whether a file of `size` bytes goes up only if its key is still free: under
        --if-exists keep, with a CLI that can, up to the size of one PutObject."""
        return self.keep_existing and self.conditional and size <= MAX_PUT_BYTES

    def found_opaque(self, encryption: str | None) -> list[Outcome]:
        """An object of this bucket showed an ETag that is no digest: remember it (the
        outcome says so once)."""
        if not self.opaque_buckets.add(self.bucket):
            return []
        return [Outcome(Kind.OPAQUE, self.bucket, reason=str(encryption))]


@dataclass
class Suspects:
    """Keys (bucket, key) that S3 may hold already, so they are looked up before their
    upload: those an upload or proof left unsettled, and those a killed run left behind
    (staging links, trash). Kept for the daemon's life; thread-safe."""

    keys: set[tuple[str, str]] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self.keys

    def update(self, keys: Iterable[tuple[str, str]]) -> None:
        with self._lock:
            self.keys.update(keys)

    def discard(self, key: tuple[str, str]) -> None:
        with self._lock:
            self.keys.discard(key)
