"""Credentials health, read off the aws calls the uploader makes anyway."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from awscli_uploader.errors import AwsCliError
from awscli_uploader.s3.health import CredentialWatch, WatchedCli, credentials_verdict


@pytest.mark.parametrize(
    ("args", "exit_code", "stderr", "valid"),
    [
        (["sts", "get-caller-identity"], 0, "", True),
        (["--version"], 0, "", None),
        (["s3api", "list-objects-v2"], 254, "An error occurred (InvalidAccessKeyId) ...", False),
        (["sts", "get-caller-identity"], 253, "Unable to locate credentials.", False),
        (["s3api", "list-buckets"], 255, "The config profile (x) could not be found", False),
        (["s3", "cp"], 1, "An error occurred (ExpiredToken) when calling ...", False),
        (["s3api", "list-objects-v2"], 254, "An error occurred (NoSuchBucket) ...", None),
        (["s3api", "list-objects-v2"], 255, 'Could not connect to the endpoint URL: "x"', None),
        (["s3", "cp"], 1, "upload failed: ... (AccessDenied)", None),
    ],
)
def test_credentials_verdict(
    args: list[str], exit_code: int, stderr: str, valid: bool | None
) -> None:
    assert credentials_verdict(args, exit_code, stderr) is valid


@pytest.mark.parametrize(
    ("verdicts", "valid"),
    [
        ([], None),
        ([True], True),
        ([False], False),
        ([True, None], True),  # a call that says nothing keeps the last answer
        ([False, None, None], False),
        ([False, True], True),
        ([True, False], False),
    ],
)
def test_watch_keeps_the_last_answer(verdicts: list[bool | None], valid: bool | None) -> None:
    watch = CredentialWatch()
    for verdict in verdicts:
        watch.record(verdict)
    assert watch.valid is valid


def _fake_cli(tmp_path: Path, body: str) -> str:
    """A stand-in `aws` that answers as told: credential failures on demand."""
    path = tmp_path / "aws"
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


SCRIPT = """case "$1" in
  sts) echo '{"Arn": "arn:aws:iam::123456789012:user/t"}' ;;
  expired) echo "An error occurred (ExpiredToken) when calling the X operation" >&2; exit 254 ;;
  missing) echo "An error occurred (NoSuchBucket) when calling the X operation" >&2; exit 254 ;;
  *) exit 0 ;;
esac"""


def test_watched_cli_records_each_call(tmp_path: Path) -> None:
    cli = WatchedCli(executable=_fake_cli(tmp_path, SCRIPT))
    assert cli.watch.valid is None
    cli.version()
    assert cli.watch.valid is None  # `aws --version` proves nothing
    with pytest.raises(AwsCliError):
        cli.run(["expired"])
    assert cli.watch.valid is False
    with pytest.raises(AwsCliError):
        cli.run(["missing"])
    assert cli.watch.valid is False  # a missing bucket says nothing about credentials
    assert cli.caller_identity()["Arn"].endswith("user/t")
    assert cli.watch.valid is True
    cli.run(["expired"], ok=(0, 254))  # an accepted failure is still a verdict
    assert cli.watch.valid is False


def test_a_timed_out_call_says_nothing(tmp_path: Path) -> None:
    cli = WatchedCli(executable=_fake_cli(tmp_path, "exec sleep 30"))
    cli.watch.record(True)
    with pytest.raises(AwsCliError) as caught:
        cli.run(["s3api", "list-buckets"], timeout=0.5)
    assert caught.value.timed_out
    assert cli.watch.valid is True
