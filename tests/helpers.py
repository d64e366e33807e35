"""Test helpers: moto access, files with old mtimes, the recording AWS CLI seam, running the
program, nothing lost."""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from click.testing import CliRunner

from awscli_uploader.cli import command, main
from awscli_uploader.config import Config
from awscli_uploader.errors import AwsCliError
from awscli_uploader.local.state import STAGING, StateDir
from awscli_uploader.model import Count
from awscli_uploader.options import BUCKET_MAP_ENV, EXCLUDE_ENV
from awscli_uploader.s3.awscli import AwsCli, Result
from awscli_uploader.scan.record import Tally
from awscli_uploader.scan.uploader import Uploader

REPO = Path(__file__).resolve().parent.parent
REGION = "eu-west-1"
OLD = time.time() - 3600
IN_CI = os.environ.get("CI", "").lower() == "true"
# The Python whose environment holds the test tools (the moto server, AWS CLI v1): this one,
# unless a run on another Python (tests/test_py39.py) borrows them from the main environment.
TOOLS_PYTHON = os.environ.get("AWSCLI_UPLOADER_TOOLS_PYTHON") or sys.executable


def _operator_env() -> set[str]:
    """Every variable the program reads as a setting: each option's envvar, of the daemon
    and of `status`, and the two lists read by hand (the AWS_* ones are cleared apart)."""
    names = {EXCLUDE_ENV, BUCKET_MAP_ENV}
    for cmd in (command, *command.commands.values()):
        for param in cmd.params:
            envvar = param.envvar
            names.update([envvar] if isinstance(envvar, str) else envvar or ())
    return names


OPERATOR_ENV = frozenset(_operator_env())
_KEEP = {"AWS_CA_BUNDLE"}


def isolate_aws(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test sees the developer's ~/.aws, credentials, instance metadata or runtime
    directory (where the transfer layer goes): conftest's autouse fixture for each test, and
    a module-scoped fixture's own for what it starts (it is set up before that one)."""
    home = tmp_path_factory.mktemp("home")
    for name in list(os.environ):
        if name.startswith("AWS_") and name not in _KEEP:
            monkeypatch.delenv(name)
    for name in OPERATOR_ENV:
        monkeypatch.delenv(name, raising=False)
    (home / "config").write_text("")
    (home / "credentials").write_text("")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path_factory.mktemp("run")))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


def project_version() -> str:
    """The version pyproject.toml declares, which the program must report."""
    match = re.search(r'^version = "([^"]+)"$', (REPO / "pyproject.toml").read_text(), re.M)
    assert match is not None
    return match.group(1)


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """`handler` answering on a free loopback port for the block: its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, deadline: float) -> None:
    end = time.monotonic() + deadline
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return  # it answers, if only with an error (s3rver without credentials: 403)
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.1)


class Moto:
    key = "testing"  # access key id and secret the server accepts

    def __init__(self, url: str) -> None:
        self.url = url

    @functools.cached_property
    def client(self) -> Any:  # boto3 ships no types (boto3-stubs would add them)
        """One boto3 S3 client per server (clients are thread-safe): making one costs ~10 ms."""
        return self.service("s3")

    def service(self, name: str) -> Any:
        """A boto3 client of the service `name` (s3, ec2, ...) on this server."""
        import boto3

        return boto3.client(
            name,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=self.key,
            aws_secret_access_key=self.key,
        )

    def reset(self) -> None:
        req = urllib.request.Request(self.url + "/moto-api/reset", method="POST")
        urllib.request.urlopen(req, timeout=10).close()

    def create_bucket(self, name: str, **kwargs: object) -> None:
        self.client.create_bucket(
            Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION}, **kwargs
        )

    def put(
        self, bucket: str, key: str, body: bytes, *, metadata: dict[str, str] | None = None
    ) -> None:
        self.client.put_object(Bucket=bucket, Key=key, Body=body, Metadata=metadata or {})

    def buckets(self) -> list[str]:
        return [b["Name"] for b in self.client.list_buckets().get("Buckets", [])]

    def get(self, bucket: str, key: str) -> bytes:
        data: bytes = self.client.get_object(Bucket=bucket, Key=key)["Body"].read()
        return data

    def keys(self, bucket: str) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))

    def head(self, bucket: str, key: str) -> dict[str, Any]:
        data: dict[str, Any] = self.client.head_object(Bucket=bucket, Key=key)
        return data


class S3rver(Moto):
    """A second S3 implementation (npm s3rver): no STS, its own quirks, keys S3RVER."""

    key = "S3RVER"

    def reset(self) -> None:
        client = self.client
        for bucket in client.list_buckets().get("Buckets", []):
            for key in self.keys(bucket["Name"]):
                client.delete_object(Bucket=bucket["Name"], Key=key)
            client.delete_bucket(Bucket=bucket["Name"])


@functools.cache
def cli_path(version: str) -> str | None:
    """AWS CLI v1 (beside the tools' Python, from PyPI) or v2 (Debian's), if installed; looked up
    when a test first asks, so that a worker running neither starts no `aws --version`."""
    if version == "v1":
        v1 = Path(TOOLS_PYTHON).parent / "aws"
        return str(v1) if v1.exists() else None
    v2 = Path("/usr/bin/aws")
    return str(v2) if v2.exists() and "aws-cli/2" in _version(v2) else None


def required_cli(version: str) -> str:
    """The path of AWS CLI `version`; a skip when it is not installed, a failure in CI (which
    must run both)."""
    path = cli_path(version)
    if path is None:
        message = f"AWS CLI {version} is not installed"
        if IN_CI:
            pytest.fail(message + " (CI must run both)")
        pytest.skip(message)
    return path


def _version(path: Path) -> str:
    try:
        out = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=30)
    except OSError:
        return ""
    return out.stdout + out.stderr


@functools.cache
def has_if_none_match(aws_cli: str) -> bool:
    """Whether this CLI's put-object takes --if-none-match, by its own help page (not the
    package's probe, which is under test); read once per CLI and worker."""
    page = subprocess.run(
        [aws_cli, "s3api", "put-object", "help"], capture_output=True, text=True, timeout=60
    )
    return "--if-none-match" in page.stdout


def write(path: Path, data: bytes, *, mtime: float | None = OLD) -> Path:
    """A file under the tree; old by default so it is stable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


Answer = Callable[[list[str]], "Result | None"]


@dataclass(frozen=True)
class RecordingCli(AwsCli):
    """The AWS CLI seam, recording the argument list of every call. `answer` sees each call
    before it runs: it may answer it (a Result, failing as the CLI's own would when its exit
    code is not accepted), fail it (raise AwsCliError) or return None: the real CLI runs."""

    answer: Answer | None = None
    calls: list[list[str]] = field(default_factory=list, compare=False)
    regions: list[str | None] = field(default_factory=list, compare=False)  # each call's
    endpoints: list[str | None] = field(default_factory=list, compare=False)  # each call's

    def run(
        self,
        args: Sequence[str],
        *,
        timeout: float | None = None,
        ok: Sequence[int] = (0,),
        upload_bytes: int | None = None,
        cancellable: bool = True,
    ) -> Result:
        call = list(args)
        self.calls.append(call)
        self.regions.append(self.region)
        self.endpoints.append(self.endpoint_url)
        answered = None if self.answer is None else self.answer(call)
        if answered is None:
            return super().run(
                args, timeout=timeout, ok=ok, upload_bytes=upload_bytes, cancellable=cancellable
            )
        if answered.exit_code not in ok:
            raise AwsCliError(call, answered.exit_code, answered.stderr)
        return answered

    def commands(self) -> list[str]:
        """Each call's first two words, in order: `s3 cp`, `s3api list-objects-v2`."""
        return [" ".join(call[:2]) for call in self.calls]


class Recorded(NamedTuple):
    uploader: Uploader
    cli: RecordingCli  # the uploader's own, recording its calls


def recorded_uploader(
    root: Path,
    moto: Moto,
    aws_cli: str,
    *,
    endpoint: str | None = None,
    answer: Answer | None = None,
    connect_timeout: int = 10,
    read_timeout: int = 60,
    **overrides: Any,
) -> Recorded:
    """An uploader whose aws calls go to moto, or through `endpoint` (the fault proxy), by
    the recording seam."""
    settings: dict[str, Any] = {"stability": 2, **overrides}
    config = Config(
        root=root,
        endpoint_url=endpoint or moto.url,
        aws_cli=aws_cli,
        region=REGION,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        **settings,
    )
    cli = RecordingCli(
        executable=aws_cli,
        region=REGION,
        endpoint_url=config.endpoint_url,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        answer=answer,
    )
    return Recorded(Uploader(config, cli, logging.getLogger("awscli_uploader.test")), cli)


def make_uploader(root: Path, moto: Moto, aws_cli: str, **kwargs: Any) -> Uploader:
    """recorded_uploader's uploader, for a test that does not read the calls."""
    return recorded_uploader(root, moto, aws_cli, **kwargs).uploader


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`python -m awscli_uploader ARGS` as a user would run it."""
    return subprocess.run(
        [sys.executable, "-m", "awscli_uploader", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        cwd=REPO,
    )


def run_once(
    root: Path, endpoint: str, aws_cli: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """One `--once` scan of `root` by the real program against `endpoint` (moto or the proxy)."""
    common = ["--once", "-d", str(root), "--endpoint-url", endpoint, "--aws-cli", aws_cli]
    return run_cli(*common, *args, env=env)


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


def _runner() -> CliRunner:
    """A runner that keeps stderr apart: click 8.2 always does; 8.1 (the newest for
    Python 3.9) only when told, and has no third stream."""
    try:
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    except TypeError:
        return CliRunner()


def run_in_process(*args: str, env: Mapping[str, str | None] | None = None) -> Ran:
    """The program's entry point run in this process through click's CliRunner: for flags,
    environment and exit codes that need no real process. Signal handlers and the package
    logger are put back afterwards."""
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    logger = logging.getLogger("awscli_uploader")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    code = 0
    try:
        with _runner().isolation(env=env) as streams:
            out, err = streams[0], streams[1]
            try:
                main(list(args))
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
            stdout, stderr = out.getvalue().decode(), err.getvalue().decode()
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        logger.handlers[:], logger.level, logger.propagate = saved
    return Ran(code, stdout, stderr)


def start_daemon(
    *args: str, log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """`python -m awscli_uploader ARGS` in the background, stdout and stderr into `log`."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "awscli_uploader", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=REPO,
        )


class Running:
    """A daemon started by `daemon`: its process and its log."""

    def __init__(self, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.proc = proc
        self.log = log

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = 60) -> None:
        end = time.monotonic() + timeout
        while text not in self.output():
            if self.proc.poll() is not None or time.monotonic() > end:
                raise AssertionError(f"never saw {text!r}; output:\n{self.output()}")
            time.sleep(0.1)


@contextmanager
def daemon(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Running]:
    """The program running in the background for the block; killed after it if still up."""
    log = tmp_path / f"daemon-{time.monotonic_ns()}.log"
    proc = start_daemon(*args, log=log, env=env)
    try:
        yield Running(proc, log)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


Fault = Callable[[Path], "OSError | None"]


@contextmanager
def os_fault(fault: Fault, *names: str) -> Iterator[None]:
    """While the block runs, `os.<name>(path, ...)` raises what `fault(path)` returns (None:
    the real call runs). `os` is one module for the whole process, so a fault is kept to the
    block and to the paths `fault` picks; every other caller gets the real call."""
    real = {name: getattr(os, name) for name in names}

    def faulty(name: str) -> Callable[..., Any]:
        def call(path: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(path, (str, bytes, os.PathLike)):
                error = fault(Path(os.fsdecode(path)))
                if error is not None:
                    raise error
            return real[name](path, *args, **kwargs)

        return call

    with pytest.MonkeyPatch.context() as patch:
        for name in names:
            patch.setattr(os, name, faulty(name))
        yield


@contextmanager
def scandirs() -> Iterator[list[Path]]:
    """The directories `os.scandir` lists while the block runs, in order."""
    listed: list[Path] = []

    def note(path: Path) -> None:  # no fault: the real call runs
        listed.append(path)

    with os_fault(note, "scandir"):
        yield listed


def tree(root: Path) -> list[str]:
    """Files and symlinks left under root. The uploader's own state directory is not
    entered: a running daemon removes its staging directories while the walk goes on."""
    state = StateDir(root).path
    found = []
    for directory, dirs, files in os.walk(root):
        here = Path(directory)
        links = [d for d in dirs if (here / d).is_symlink()]  # listed, never followed
        dirs[:] = [d for d in dirs if here / d != state and d not in links]
        found += [str((here / name).relative_to(root)) for name in files + links]
    return sorted(found)


Files = dict[tuple[str, str], bytes]  # (bucket, key): the bytes written


def put_files(root: Path, files: Files) -> Files:
    """Each file written under root/<bucket>/<key>, old enough to be stable."""
    for (bucket, key), data in files.items():
        write(root / bucket / key, data)
    return files


def assert_nothing_lost(root: Path, moto: Moto, files: Files) -> int:
    """Each file is either still local and intact, or byte-equal in S3. Returns how many left."""
    left = 0
    for (bucket, key), data in files.items():
        local = root / bucket / key
        if local.exists():
            assert local.read_bytes() == data, f"{bucket}/{key} changed locally"
            left += 1
        else:
            assert moto.get(bucket, key) == data, f"{bucket}/{key} deleted but S3 differs"
    return left


def assert_drained(root: Path, moto: Moto, files: Files) -> None:
    """Nothing left: every file byte-equal in S3, no staging link behind."""
    assert tree(root) == []
    assert assert_nothing_lost(root, moto, files) == 0
    staging = StateDir(root).path / STAGING
    assert not staging.exists() or list(staging.rglob("*")) == []


def dump(data: object) -> str:
    return json.dumps(data, indent=1, default=str)


def tally(*, uploaded_bytes: int = 0, **files: int) -> Tally:
    """A tally from counter names: tally(uploaded=2, uploaded_bytes=30, present=1)."""
    return Tally(Counter({Count(name): n for name, n in files.items()}), uploaded_bytes)
