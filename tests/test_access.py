"""The start-up access check: which call, which hint, which exit code."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest
from helpers import REGION, Moto

from awscli_uploader.cli import main
from awscli_uploader.errors import AccessError, ConfigError
from awscli_uploader.s3.access import access_hint, check_endpoint_url, validate_access
from awscli_uploader.s3.awscli import AwsCli, ErrorKind

LOG = logging.getLogger("awscli_uploader.test")


@pytest.mark.parametrize(
    "url",
    [
        None,
        "http://127.0.0.1:9000",
        "https://s3.eu-west-1.amazonaws.com",
        "http://minio/",
        "http://[::1]:9000",
    ],
)
def test_good_endpoint_urls(url: str | None) -> None:
    check_endpoint_url(url)


@pytest.mark.parametrize(
    "url", ["notaurl", "127.0.0.1:9000", "ftp://host", "http://", "http://host:port", "http:///x"]
)
def test_bad_endpoint_urls_are_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="S3_ENDPOINT_URL"):
        check_endpoint_url(url)


@pytest.mark.parametrize(
    ("kind", "stderr", "words"),
    [
        (
            ErrorKind.NO_PROFILE,
            "The config profile (lab-laptop) could not be found",
            ["'lab-laptop' does not exist", "aws configure --profile lab-laptop", "/etc/aws"],
        ),
        (ErrorKind.NO_CREDENTIALS, "Unable to locate credentials", ["aws configure"]),
        (ErrorKind.BAD_CREDENTIALS, "(InvalidAccessKeyId)", ["invalid or expired"]),
        (ErrorKind.UNREACHABLE, "Could not connect", ["--endpoint-url"]),
        (ErrorKind.OTHER, "b'Not Found'", ["AWS access check failed"]),
    ],
)
def test_access_hint(kind: ErrorKind, stderr: str, words: list[str]) -> None:
    hint = access_hint(kind, stderr, config_file="/etc/aws")
    for word in words:
        assert word in hint


def test_bad_endpoint_url_exits_2_before_any_aws_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a missing CLI would be exit 3, a failed access check exit 4: 2 means neither ran
    argv = ["--once", "-d", str(tmp_path), "--endpoint-url", "notaurl", "--aws-cli", "/no/aws"]
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    assert "endpoint URL 'notaurl'" in capsys.readouterr().err


def test_missing_profile_is_named_with_how_to_create_it(moto: Moto, aws_cli: str) -> None:
    cli = AwsCli(executable=aws_cli, region=REGION, endpoint_url=moto.url, profile="nosuchprofile")
    with pytest.raises(AccessError) as caught:
        validate_access(cli, None, LOG)
    message = str(caught.value)
    assert "'nosuchprofile' does not exist" in message
    assert "aws configure --profile nosuchprofile" in message
    assert "invalid or expired" not in message
    assert caught.value.exit_code == 4


def test_with_an_endpoint_the_check_is_an_s3_call(
    moto: Moto, aws_cli: str, caplog: pytest.LogCaptureFixture
) -> None:
    moto.create_bucket("seen")
    cli = AwsCli(executable=aws_cli, region=REGION, endpoint_url=moto.url)
    with caplog.at_level(logging.INFO):
        validate_access(cli, None, LOG)
    assert f"{moto.url} lists 1 buckets" in caplog.text


def test_a_denied_listing_still_proves_the_credentials(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A store may deny ListBuckets to a key that may upload: denied means authenticated."""
    fake = tmp_path / "aws"
    fake.write_text(
        "#!/bin/sh\necho 'An error occurred (AccessDenied) when calling the ListBuckets "
        "operation: Access Denied' >&2\nexit 254\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    cli = AwsCli(executable=str(fake), endpoint_url="http://127.0.0.1:1")
    with caplog.at_level(logging.INFO):
        validate_access(cli, None, LOG)
    assert "accepted the credentials" in caplog.text
