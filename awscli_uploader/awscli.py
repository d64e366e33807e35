"""The one seam to the AWS CLI: argument lists in, typed results or AwsCliError out.

Every call gets connect and read timeouts and a process timeout, JSON output,
no pager, no prompt and no tty, and runs in its own process group so that a
signal meant for the daemon does not kill an upload half-way.
"""

from __future__ import annotations

import contextlib
import enum
import json
import os
import shutil
import signal
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sh

from .errors import AwsCliError, AwsCliMissing
from .proof import SHA256_METADATA, RemoteObject

INSTALL_HINT = (
    "install AWS CLI v2 (https://docs.aws.amazon.com/cli/latest/userguide/"
    "getting-started-install.html, or `apt-get install awscli`), "
    "or pass its path with --aws-cli"
)
API_TIMEOUT = 300.0
MIN_RATE = 1024 * 1024  # bytes/s below which an upload counts as hung


class ErrorKind(enum.Enum):
    NO_CREDENTIALS = "no credentials"
    BAD_CREDENTIALS = "invalid or expired credentials"
    UNREACHABLE = "endpoint unreachable"
    NO_SUCH_BUCKET = "bucket does not exist"
    ACCESS_DENIED = "access denied"
    OTHER = "error"


_MARKERS: tuple[tuple[ErrorKind, tuple[str, ...]], ...] = (
    (ErrorKind.NO_CREDENTIALS, ("Unable to locate credentials", "Partial credentials found")),
    (
        ErrorKind.BAD_CREDENTIALS,
        (
            "InvalidClientTokenId",
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "ExpiredToken",
            "Token has expired",
            "token has expired",
            "The SSO session",
            "Error loading SSO Token",
            "The config profile",
        ),
    ),
    (
        ErrorKind.UNREACHABLE,
        ("Could not connect to the endpoint URL", "Connect timeout", "Read timeout", "timed out"),
    ),
    (ErrorKind.NO_SUCH_BUCKET, ("NoSuchBucket", "specified bucket does not exist")),
    (ErrorKind.ACCESS_DENIED, ("AccessDenied", "Forbidden", "(403)", "AllAccessDisabled")),
)


def classify(stderr: str) -> ErrorKind:
    """What kind of failure the CLI's stderr describes."""
    for kind, markers in _MARKERS:
        if any(marker in stderr for marker in markers):
            return kind
    return ErrorKind.OTHER


@dataclass(frozen=True)
class Result:
    exit_code: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class AwsCli:
    executable: str = "aws"
    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    connect_timeout: int = 10
    read_timeout: int = 60
    env: Mapping[str, str] = field(default_factory=dict)

    def resolve(self) -> str:
        """Absolute path of the CLI, or AwsCliMissing with how to install it."""
        found = shutil.which(self.executable)
        if found is None:
            raise AwsCliMissing(f"AWS CLI not found ({self.executable!r}): {INSTALL_HINT}")
        return found

    def _common(self) -> list[str]:
        args = [
            "--output",
            "json",
            "--cli-connect-timeout",
            str(self.connect_timeout),
            "--cli-read-timeout",
            str(self.read_timeout),
        ]
        if self.region:
            args += ["--region", self.region]
        if self.profile:
            args += ["--profile", self.profile]
        if self.endpoint_url:
            args += ["--endpoint-url", self.endpoint_url]
        return args

    def run(
        self, args: Sequence[str], *, timeout: float = API_TIMEOUT, ok: Sequence[int] = (0,)
    ) -> Result:
        """Run `aws ARGS`; AwsCliError unless the exit code is in `ok`."""
        command = [*args, *self._common()]
        env = {**os.environ, **self.env, "AWS_PAGER": "", "AWS_CLI_AUTO_PROMPT": "off"}
        expired = threading.Event()
        try:
            # sh's own _timeout polls every 0.1 s and joins that poller (~0.1 s per call);
            # a timer that kills the process group costs nothing until it fires
            proc = sh.Command(self.resolve())(
                *command,
                _env=env,
                _bg=True,
                _bg_exc=False,
                _ok_code=list(range(256)),
                _tty_in=False,
                _tty_out=False,
                _new_group=True,
                _return_cmd=True,
                _decode_errors="replace",
            )
            timer = threading.Timer(timeout, _kill_group, (proc.pid, expired))
            timer.daemon = True
            timer.start()
            try:
                proc.wait()
            finally:
                timer.cancel()
        except sh.CommandNotFound as exc:
            raise AwsCliMissing(f"AWS CLI not found ({self.executable!r}): {INSTALL_HINT}") from exc
        except sh.ErrorReturnCode as exc:  # killed by a signal: no exit code to accept
            if expired.is_set():
                raise AwsCliError(command, None, f"no answer within {timeout:.0f}s") from exc
            stderr = exc.stderr.decode("utf-8", "replace")
            raise AwsCliError(command, exc.exit_code, stderr or "killed by a signal") from exc
        except OSError as exc:
            raise AwsCliError(command, 126, str(exc)) from exc
        result = Result(
            proc.exit_code,
            proc.stdout.decode("utf-8", "replace"),
            proc.stderr.decode("utf-8", "replace"),
        )
        if result.exit_code not in ok:
            raise AwsCliError(command, result.exit_code, result.stderr)
        return result

    def version(self) -> str:
        return self.run(["--version"]).stdout.strip() or "unknown"

    def caller_identity(self) -> dict[str, Any]:
        """`aws sts get-caller-identity` as a dict (Account, Arn, UserId)."""
        data = json.loads(self.run(["sts", "get-caller-identity"]).stdout or "{}")
        return data if isinstance(data, dict) else {}

    def list_objects(self, bucket: str, prefix: str) -> dict[str, RemoteObject]:
        """Every object whose key starts with `prefix`, by key (the CLI paginates)."""
        args = ["s3api", "list-objects-v2", "--bucket", bucket]
        if prefix:
            args += ["--prefix", prefix]
        args += ["--query", "Contents[].[Key, Size, ETag]"]
        rows = json.loads(self.run(args).stdout or "null") or []
        return {key: RemoteObject(key, int(size), str(etag)) for key, size, etag in rows}

    def head_object(self, bucket: str, key: str) -> RemoteObject | None:
        """The object's size, ETag, stored SHA-256 and encryption; None when there is none."""
        try:
            result = self.run(["s3api", "head-object", "--bucket", bucket, "--key", key])
        except AwsCliError as exc:
            if "(404)" in exc.stderr or "Not Found" in exc.stderr:
                return None
            raise
        data = json.loads(result.stdout or "{}")
        encryption = data.get("ServerSideEncryption")
        if data.get("SSECustomerAlgorithm"):
            encryption = "sse-c"
        return RemoteObject(
            key,
            int(data.get("ContentLength", -1)),
            str(data.get("ETag", "")),
            (data.get("Metadata") or {}).get(SHA256_METADATA),
            encryption,
        )

    def upload_tree(
        self, source: Path, bucket: str, *, total_bytes: int, only: Sequence[str] | None = None
    ) -> Result:
        """`aws s3 cp --recursive SOURCE s3://BUCKET/`, of the files matching the `only`
        patterns when given (`--exclude '*' --include P...`); exit 1: some files failed."""
        filters = [] if only is None else ["--exclude", "*"]
        for pattern in only or ():
            filters += ["--include", pattern]
        return self.run(
            [
                "s3",
                "cp",
                "--recursive",
                "--only-show-errors",
                "--no-follow-symlinks",
                *filters,
                str(source),
                f"s3://{bucket}/",
            ],
            timeout=upload_timeout(total_bytes),
            ok=(0, 1, 2),
        )

    def upload_file(
        self, source: Path, bucket: str, key: str, *, size: int, sha256: str | None = None
    ) -> None:
        """`aws s3 cp --only-show-errors SOURCE s3://BUCKET/KEY`, storing `sha256` if given."""
        args = ["s3", "cp", "--only-show-errors", str(source), f"s3://{bucket}/{key}"]
        if sha256 is not None:
            args += ["--metadata", f"{SHA256_METADATA}={sha256}"]
        self.run(args, timeout=upload_timeout(size))


def _kill_group(pid: int, expired: threading.Event) -> None:
    expired.set()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def upload_timeout(total_bytes: int) -> float:
    """Long enough for a slow but moving upload; a hung one is ended."""
    return API_TIMEOUT + total_bytes / MIN_RATE
