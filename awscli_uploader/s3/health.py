"""Did the AWS credentials work at the last aws call? Watched on the CLI seam, at no extra cost.

A call that succeeds (other than `aws --version`) proves them; one that fails
with a credential error disproves them; any other failure (network, a missing
bucket, a denied action) says nothing about them and keeps the last answer.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..errors import AwsCliError
from .awscli import AwsCli, ErrorKind, Result, classify

CREDENTIAL_ERRORS = frozenset(
    {ErrorKind.NO_PROFILE, ErrorKind.NO_CREDENTIALS, ErrorKind.BAD_CREDENTIALS}
)


def credentials_verdict(args: Sequence[str], exit_code: int, stderr: str) -> bool | None:
    """True: the call proved the credentials; False: it disproved them; None: neither."""
    if list(args[:1]) == ["--version"]:
        return None
    if exit_code != 0 and classify(stderr) in CREDENTIAL_ERRORS:
        return False
    return True if exit_code == 0 else None


@dataclass
class CredentialWatch:
    valid: bool | None = None  # None until an aws call says
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, verdict: bool | None) -> None:
        if verdict is not None:
            with self._lock:
                self.valid = verdict


@dataclass(frozen=True)
class WatchedCli(AwsCli):
    """The AWS CLI seam, telling `watch` what each call said about the credentials."""

    watch: CredentialWatch = field(default_factory=CredentialWatch)

    def run(
        self,
        args: Sequence[str],
        *,
        timeout: float | None = None,
        ok: Sequence[int] = (0,),
        upload_bytes: int | None = None,
        cancellable: bool = True,
    ) -> Result:
        try:
            result = super().run(
                args, timeout=timeout, ok=ok, upload_bytes=upload_bytes, cancellable=cancellable
            )
        except AwsCliError as exc:
            if exc.exit_code is not None:
                self.watch.record(credentials_verdict(args, exc.exit_code, exc.stderr))
            raise
        self.watch.record(credentials_verdict(args, result.exit_code, result.stderr))
        return result
