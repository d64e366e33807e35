"""The one seam to the AWS CLI: argument lists in, typed results or AwsCliError out.

Every call gets connect and read timeouts, a watchdog (a process timeout, or
for uploads a stall window, see watchdog.py), JSON output, no pager, no prompt
and no tty, and runs in its own process group so that a signal meant for the
daemon does not kill an upload half-way.
"""

from __future__ import annotations

import base64
import ctypes
import enum
import json
import mimetypes
import os
import re
import shutil
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import sh

from ..errors import AwsCliError, AwsCliMissing
from ..model import RemoteObject
from .layer import layer_env
from .watchdog import (
    KILL_GRACE,
    STALL_SECONDS,
    Limit,
    Running,
    Watchdog,
    io_bytes,
    upload_limit,
)

INSTALL_HINT = (
    "install AWS CLI v2 (https://docs.aws.amazon.com/cli/latest/userguide/"
    "getting-started-install.html, or `apt-get install awscli`), "
    "or pass its path with --aws-cli"
)
API_TIMEOUT = 300.0
SHA256_METADATA = "awscli-uploader-sha256"  # x-amz-meta-*: the SHA-256 the uploader read
CLEANUP: dict[str, Any] = {"timeout": 60.0, "cancellable": False}  # runs after a stop too
MAX_PUT_BYTES = 5 * 1024**3  # S3's limit on one PutObject
MIN_RATE = 1024 * 1024  # without /proc: bytes/s below which an upload counts as hung


class ErrorKind(enum.Enum):
    NO_PROFILE = "profile not found"
    NO_CREDENTIALS = "no credentials"
    BAD_CREDENTIALS = "invalid or expired credentials"
    UNREACHABLE = "endpoint unreachable"
    NO_SUCH_BUCKET = "bucket does not exist"
    ACCESS_DENIED = "access denied"
    OTHER = "error"


_MARKERS: tuple[tuple[ErrorKind, tuple[str, ...]], ...] = (
    (ErrorKind.NO_PROFILE, ("The config profile (",)),
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


class Upload(NamedTuple):
    """A multipart upload in progress: its key, id, and when S3 says it was initiated."""

    key: str
    upload_id: str
    initiated: str  # ISO 8601, as the CLI prints it


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
    api_timeout: float = API_TIMEOUT  # list, head, sts: a fixed process timeout
    stall_seconds: float = STALL_SECONDS
    max_upload_seconds: float | None = None  # the operator's hard cap on one upload call
    min_rate: float = MIN_RATE
    proc: Path = Path("/proc")
    cancel_grace: float = KILL_GRACE  # from SIGINT to SIGKILL when a process is ended
    running: Running = field(default_factory=Running, compare=False, repr=False)
    layers: Path | None = None  # where an upload call's transfer layer goes (layer.py)

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
        self,
        args: Sequence[str],
        *,
        timeout: float | None = None,
        ok: Sequence[int] = (0,),
        upload_bytes: int | None = None,
        cancellable: bool = True,
    ) -> Result:
        """Run `aws ARGS`; AwsCliError unless the exit code is in `ok`. A call is ended after
        `timeout` (default `api_timeout`), an upload of `upload_bytes` only when it stalls;
        a stop cancels it unless it is not `cancellable` (the cleanup after a stop)."""
        command = [*args, *self._common()]
        env = {**os.environ, **self.env, "AWS_PAGER": "", "AWS_CLI_AUTO_PROMPT": "off"}
        env.pop("NOTIFY_SOCKET", None)  # systemd's, for the daemon: no child speaks for it
        limit = partial(self._limit, timeout=timeout, upload_bytes=upload_bytes)
        result = execute(
            self.resolve(),
            command,
            env,
            limit,
            self.proc,
            self.running if cancellable else None,
            self.cancel_grace,
        )
        if result.exit_code not in ok:
            raise AwsCliError(command, result.exit_code, result.stderr)
        return result

    def _limit(self, pid: int, *, timeout: float | None, upload_bytes: int | None) -> Limit:
        if upload_bytes is None:
            return Limit(hard=self.api_timeout if timeout is None else timeout)
        return upload_limit(
            upload_bytes,
            watchable=io_bytes(self.proc, pid) is not None,
            stall=self.stall_seconds,
            max_seconds=self.max_upload_seconds,
            base=self.api_timeout,
            min_rate=self.min_rate,
        )

    def cancel_running(self, reason: str) -> int:
        """Cancel every aws process running now, cleanly (a stop); how many."""
        return self.running.cancel(reason)

    def version(self) -> str:
        return self.run(["--version"]).stdout.strip() or "unknown"

    def caller_identity(self) -> dict[str, Any]:
        """`aws sts get-caller-identity` as a dict (Account, Arn, UserId)."""
        data = json.loads(self.run(["sts", "get-caller-identity"]).stdout or "{}")
        return data if isinstance(data, dict) else {}

    def list_buckets(self) -> list[str]:
        """`aws s3api list-buckets`: the bucket names these credentials can see."""
        data = json.loads(self.run(["s3api", "list-buckets"]).stdout or "{}")
        buckets = data.get("Buckets") if isinstance(data, dict) else None
        return [str(b.get("Name")) for b in buckets or [] if isinstance(b, dict)]

    def list_objects(
        self,
        bucket: str,
        prefix: str,
        *,
        start_after: str | None = None,
        max_items: int | None = None,
    ) -> dict[str, RemoteObject]:
        """The objects whose keys start with `prefix`, by key, in key order: those after
        `start_after` when given, the first `max_items` when given (the CLI paginates)."""
        args = ["s3api", "list-objects-v2", "--bucket", bucket]
        if prefix:  # `=`: a value may start with "-"
            args.append(f"--prefix={prefix}")
        if start_after:
            args.append(f"--start-after={start_after}")
        if max_items is not None:
            args += ["--max-items", str(max_items)]
        args += ["--query", "Contents[].[Key, Size, ETag]"]
        rows = json.loads(self.run(args).stdout or "null") or []
        return {key: RemoteObject(key, int(size), str(etag)) for key, size, etag in rows}

    def head_object(self, bucket: str, key: str) -> RemoteObject | None:
        """The object's size, ETag, stored SHA-256 and encryption; None when there is none."""
        try:
            result = self.run(["s3api", "head-object", f"--bucket={bucket}", f"--key={key}"])
        except AwsCliError as exc:
            if "(404)" in exc.stderr or "Not Found" in exc.stderr:
                return None
            raise
        return head_result(key, json.loads(result.stdout or "{}"))

    def complete_lifecycle_action(self, hook: str, group: str, instance: str) -> None:
        """Tell the Auto Scaling group its termination hook may go on (CONTINUE)."""
        self.run(
            [
                "autoscaling",
                "complete-lifecycle-action",
                f"--lifecycle-hook-name={hook}",
                f"--auto-scaling-group-name={group}",
                f"--instance-id={instance}",
                "--lifecycle-action-result=CONTINUE",
            ],
            **CLEANUP,
        )

    def record_lifecycle_action_heartbeat(self, hook: str, group: str, instance: str) -> None:
        """Extend the termination hook's wait by another heartbeat timeout."""
        self.run(
            [
                "autoscaling",
                "record-lifecycle-action-heartbeat",
                f"--lifecycle-hook-name={hook}",
                f"--auto-scaling-group-name={group}",
                f"--instance-id={instance}",
            ],
            **CLEANUP,
        )

    def set_delete_on_termination(self, instance: str, device: str, *, delete: bool) -> None:
        """Set whether the instance's EBS volume at `device` is deleted with the instance."""
        mapping = [{"DeviceName": device, "Ebs": {"DeleteOnTermination": delete}}]
        self.run(
            [
                "ec2",
                "modify-instance-attribute",
                f"--instance-id={instance}",
                f"--block-device-mappings={json.dumps(mapping)}",
            ],
            **CLEANUP,
        )

    def list_multipart_uploads(self, bucket: str, prefix: str) -> list[Upload]:
        """The multipart uploads in progress under `prefix` (the CLI paginates)."""
        args = ["s3api", "list-multipart-uploads", f"--bucket={bucket}"]
        if prefix:
            args.append(f"--prefix={prefix}")
        args += ["--query", "Uploads[].[Key, UploadId, Initiated]"]
        rows = json.loads(self.run(args, **CLEANUP).stdout or "null") or []
        return [Upload(str(key), str(upload), str(when)) for key, upload, when in rows]

    def abort_multipart_upload(self, bucket: str, upload: Upload) -> None:
        self.run(
            [
                "s3api",
                "abort-multipart-upload",
                f"--bucket={bucket}",
                f"--key={upload.key}",
                f"--upload-id={upload.upload_id}",
            ],
            **CLEANUP,
        )

    def upload_tree(
        self,
        source: Path,
        bucket: str,
        *,
        total_bytes: int,
        only: Sequence[str] | None = None,
        concurrency: int | None = None,
    ) -> Result:
        """`aws s3 cp --recursive SOURCE s3://BUCKET/`, of the files under the keys `only` when
        given (see `exact_filters`), with `concurrency` requests in flight unless the profile
        sets its own (layer.py); exit 1: some files failed."""
        root = os.path.abspath(source)  # never a leading "-"; the root the CLI's filters join
        filters = [] if only is None else exact_filters(root, only)
        environ = {**os.environ, **self.env}
        with layer_env(self.layers, environ, self.profile, concurrency) as extra:
            cli = replace(self, env={**self.env, **extra}) if extra else self
            return cli._upload_tree(root, bucket, filters, total_bytes)

    def _upload_tree(
        self, root: str, bucket: str, filters: Sequence[str], total_bytes: int
    ) -> Result:
        return self.run(
            [
                "s3",
                "cp",
                "--recursive",
                "--only-show-errors",
                "--no-follow-symlinks",
                *filters,
                root,
                f"s3://{bucket}/",
            ],
            ok=(0, 1, 2),
            upload_bytes=total_bytes,
        )

    def upload_file(
        self, source: Path, bucket: str, key: str, *, size: int, sha256: str | None = None
    ) -> None:
        """`aws s3 cp --only-show-errors SOURCE s3://BUCKET/KEY`, storing `sha256` if given."""
        path = os.path.abspath(source)
        args = ["s3", "cp", "--only-show-errors", path, f"s3://{bucket}/{key}"]
        if sha256 is not None:
            args.append(f"--metadata={SHA256_METADATA}={sha256}")
        self.run(args, upload_bytes=size)

    def conditional_put(self) -> bool:
        """Whether this CLI can make a PutObject conditional (`--if-none-match`, from S3's
        conditional writes of August 2024): its input skeleton names IfNoneMatch."""
        try:
            skeleton = self.run(["s3api", "put-object", "--generate-cli-skeleton", "input"])
        except AwsCliError:
            return False
        return '"IfNoneMatch"' in skeleton.stdout

    def put_new(
        self, source: Path, bucket: str, key: str, *, size: int, md5: str, sha256: str
    ) -> RemoteObject | None:
        """`aws s3api put-object --if-none-match=*`: the file as a new object at KEY, storing
        its SHA-256, with its MD5 as Content-MD5 (S3 refuses a body with other bytes, BadDigest,
        rather than store it). What S3 stored, as its answer says (the ETag, the encryption;
        the size is the one sent: S3 stores exactly the body it accepted); None when S3
        refused because the key exists (412 PreconditionFailed: another writer created it
        meanwhile). Up to MAX_PUT_BYTES, in one request."""
        args = [
            "s3api",
            "put-object",
            f"--bucket={bucket}",
            f"--key={key}",
            f"--body={os.path.abspath(source)}",
            "--if-none-match=*",
            f"--content-md5={base64.b64encode(bytes.fromhex(md5)).decode()}",
            f"--metadata={SHA256_METADATA}={sha256}",
        ]
        content_type = mimetypes.guess_type(key)[0]  # as `s3 cp` guesses it
        if content_type is not None:
            args.append(f"--content-type={content_type}")
        try:
            result = self.run(args, upload_bytes=size)
        except AwsCliError as exc:
            if "PreconditionFailed" in exc.stderr:
                return None
            raise
        answer = head_result(key, json.loads(result.stdout or "{}"))
        return answer._replace(size=size)

    def read_back(self, bucket: str, key: str, dest: Path, *, size: int) -> RemoteObject:
        """`aws s3api get-object`: the object's bytes into `dest`, and what S3 said of it."""
        result = self.run(
            ["s3api", "get-object", f"--bucket={bucket}", f"--key={key}", os.path.abspath(dest)],
            upload_bytes=size,  # a transfer: ended when it stalls, not after a fixed time
        )
        return head_result(key, json.loads(result.stdout or "{}"))


def glob_escape(text: str) -> str:
    """`text` as an fnmatch pattern that matches exactly it."""
    return re.sub(r"([*?\[])", r"[\1]", text)


def exact_filters(root: str, keys: Sequence[str]) -> list[str]:
    """Filters under which `aws s3 cp --recursive ROOT` uploads exactly the files at `keys`.

    The CLI joins its source directory to each pattern unescaped (`os.path.join`), so a
    root holding `[`, `*` or `?` would turn the patterns into other ones (`run[3]/*` matches
    no file of `run[3]/`, and then nothing is excluded). An absolute pattern replaces the
    root in that join: each pattern here is the whole path, every glob character escaped.
    """
    base = glob_escape(root.rstrip("/")) + "/"
    return [f"--exclude={base}*", *(f"--include={base}{glob_escape(k)}" for k in keys)]


def ended(command: Sequence[str], watchdog: Watchdog) -> AwsCliError:
    """The error of a call the watchdog ended (a limit), or a stop cancelled."""
    return AwsCliError(command, None, watchdog.reason or "", cancelled=watchdog.cancelled)


def head_result(key: str, data: dict[str, Any]) -> RemoteObject:
    """A head-object response as a RemoteObject (SSE-C counts as encryption too)."""
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


_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
PR_SET_PDEATHSIG = 1


def child_setup(parent: int) -> None:
    """In the forked child, before the exec.

    SIGKILL when the daemon dies, however it dies (an OOM kill, kill -9). Not SIGINT: the
    CLI would let a PUT in flight finish, and an orphan's older bytes could land after a
    restarted daemon's newer ones. What the kill leaves in S3 (multipart uploads) the next
    start aborts from the journal. The kernel watches the thread that forked, which waits
    for the child.

    SIGINT's default action: the cancel is a SIGINT, on which the CLI aborts its multipart
    uploads, and an ignored signal stays ignored across exec. The daemon installs its own
    handler (exec resets a caught signal), but a caller that ignores SIGINT (a library user,
    the calls made before the handlers exist, a test in a job started with `cmd &`) would
    otherwise hand the CLI a SIGINT it can't receive; a blocked one (the mask survives
    fork and exec) is unblocked for the same reason."""
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # died before the prctl
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def execute(
    executable: str,
    command: list[str],
    env: dict[str, str],
    limit: Callable[[int], Limit],
    proc_root: Path,
    running: Running | None = None,
    grace: float = KILL_GRACE,
) -> Result:
    """Run the CLI in its own process group under a watchdog with the `limit` for its pid,
    cancellable through `running`; AwsCliError when it could not run, or was ended."""
    watchdog: Watchdog | None = None
    try:
        # sh's own _timeout polls every 0.1 s and joins that poller (~0.1 s per call);
        # a thread that waits on an event costs nothing until the limit is reached
        proc = sh.Command(executable)(
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
            _preexec_fn=partial(child_setup, os.getpid()),
        )
        watchdog = Watchdog(proc.pid, limit(proc.pid), proc=proc_root, grace=grace)
        watchdog.start()
        if running is not None:
            running.add(watchdog)
        try:
            proc.wait()
        finally:
            watchdog.stop()
            if running is not None:
                running.discard(watchdog)
    except sh.CommandNotFound as exc:
        raise AwsCliMissing(f"AWS CLI not found ({executable!r}): {INSTALL_HINT}") from exc
    except sh.ErrorReturnCode as exc:  # killed by a signal: no exit code to accept
        if watchdog is not None and watchdog.reason is not None:
            raise ended(command, watchdog) from exc
        stderr = exc.stderr.decode("utf-8", "replace")
        raise AwsCliError(command, exc.exit_code, stderr or "killed by a signal") from exc
    except OSError as exc:
        raise AwsCliError(command, 126, str(exc)) from exc
    if watchdog.reason is not None:  # it exited on the SIGINT
        raise ended(command, watchdog)
    return Result(
        proc.exit_code,
        proc.stdout.decode("utf-8", "replace"),
        proc.stderr.decode("utf-8", "replace"),
    )
