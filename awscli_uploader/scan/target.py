"""One bucket's context for a scan, shared by all its chunks: the AWS CLI, the part layout
the CLI makes, the if-exists policy, and whether the bucket's ETags prove anything."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..local.state import StateDir
from ..model import Kind, Outcome
from ..s3.awscli import MAX_PUT_BYTES, AwsCli
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


@dataclass(frozen=True)
class Target:
    cli: AwsCli
    bucket: str
    multipart: MultipartSettings = field(default_factory=MultipartSettings)
    keep_existing: bool = False  # --if-exists keep: never overwrite different content
    conditional: bool = False  # and the CLI can upload with If-None-Match (put-object)
    opaque_buckets: OpaqueBuckets = field(default_factory=OpaqueBuckets)
    max_concurrency: int = DEFAULT_CONCURRENCY  # requests in flight for many small files

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
