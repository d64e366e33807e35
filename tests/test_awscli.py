"""The seam to the AWS CLI: typed results and errors, timeouts, no tty."""

from __future__ import annotations

import hashlib
import os
import stat
from datetime import datetime, timezone
from pathlib import Path

import pytest
from helpers import REGION, Moto, RecordingCli
from layouts import MIB

from awscli_uploader.errors import AwsCliError, AwsCliMissing, last_line
from awscli_uploader.s3.awscli import AwsCli, ErrorKind, Result, classify
from awscli_uploader.s3.multipart import initiated_at


@pytest.mark.parametrize(
    ("stderr", "kind"),
    [
        (
            "Unable to locate credentials. You can configure credentials by running ...",
            ErrorKind.NO_CREDENTIALS,
        ),
        (
            "An error occurred (InvalidClientTokenId) when calling the GetCallerIdentity operation",
            ErrorKind.BAD_CREDENTIALS,
        ),
        ("An error occurred (ExpiredToken) when calling ...", ErrorKind.BAD_CREDENTIALS),
        ('Could not connect to the endpoint URL: "http://127.0.0.1:9/"', ErrorKind.UNREACHABLE),
        (
            "An error occurred (NoSuchBucket) when calling the ListObjectsV2 operation",
            ErrorKind.NO_SUCH_BUCKET,
        ),
        (
            "An error occurred (AccessDenied) when calling the ListObjectsV2 operation",
            ErrorKind.ACCESS_DENIED,
        ),
        ("The config profile (nosuchprofile) could not be found", ErrorKind.NO_PROFILE),
        ("something else", ErrorKind.OTHER),
    ],
)
def test_classify(stderr: str, kind: ErrorKind) -> None:
    assert classify(stderr) is kind


def _fake_cli(tmp_path: Path, body: str) -> str:
    """A stand-in `aws` for what the real one can't be made to do on demand."""
    path = tmp_path / "aws"
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_missing_cli_is_typed(tmp_path: Path) -> None:
    with pytest.raises(AwsCliMissing, match="install AWS CLI"):
        AwsCli(executable=str(tmp_path / "nope")).version()


def test_hung_cli_is_ended_by_the_process_timeout(tmp_path: Path) -> None:
    cli = AwsCli(executable=_fake_cli(tmp_path, "exec sleep 30"))
    with pytest.raises(AwsCliError) as caught:
        cli.run(["s3api", "list-buckets"], timeout=0.5)
    assert caught.value.timed_out


def test_failure_carries_command_code_and_stderr(tmp_path: Path) -> None:
    cli = AwsCli(executable=_fake_cli(tmp_path, 'echo "boom: $1" >&2; exit 254'))
    with pytest.raises(AwsCliError) as caught:
        cli.run(["s3api", "head-object"])
    assert caught.value.exit_code == 254
    assert caught.value.command[:2] == ("s3api", "head-object")
    assert "boom: s3api" in caught.value.summary()


def test_every_call_has_timeouts_json_and_no_pager_or_tty(tmp_path: Path) -> None:
    script = 'printf "%s\\n" "$@"; echo "PAGER=[$AWS_PAGER]"; [ -t 1 ] && echo TTY; exit 0'
    cli = AwsCli(
        executable=_fake_cli(tmp_path, script),
        region="eu-west-1",
        profile="dev",
        endpoint_url="http://127.0.0.1:1",
        connect_timeout=3,
        read_timeout=7,
    )
    lines = cli.run(["sts", "get-caller-identity"]).stdout.splitlines()
    for pair in (
        ["--cli-connect-timeout", "3"],
        ["--cli-read-timeout", "7"],
        ["--output", "json"],
        ["--region", "eu-west-1"],
        ["--profile", "dev"],
        ["--endpoint-url", "http://127.0.0.1:1"],
    ):
        index = lines.index(pair[0])
        assert lines[index + 1] == pair[1]
    assert "PAGER=[]" in lines
    assert "TTY" not in lines


def test_the_cli_does_not_get_systemd_s_notify_socket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", "/run/systemd/notify")
    cli = AwsCli(executable=_fake_cli(tmp_path, 'echo "[${NOTIFY_SOCKET-unset}]"; exit 0'))
    assert cli.run(["sts", "get-caller-identity"]).stdout == "[unset]\n"


def test_list_objects_against_moto(moto: Moto, aws_cli: str) -> None:
    moto.create_bucket("listing")
    for i in range(3):
        moto.put("listing", f"run/{i}.txt", b"x" * i)
    moto.put("listing", "other/z.txt", b"z")
    cli = AwsCli(executable=aws_cli, region="eu-west-1", endpoint_url=moto.url)
    found = cli.list_objects("listing", "run/")
    assert sorted(found) == ["run/0.txt", "run/1.txt", "run/2.txt"]
    assert found["run/2.txt"].size == 2
    assert cli.list_objects("listing", "nothing-here/") == {}


def test_cli_killed_by_a_signal_is_a_typed_error(tmp_path: Path) -> None:
    cli = AwsCli(executable=_fake_cli(tmp_path, "kill -KILL $$"))
    with pytest.raises(AwsCliError) as caught:
        cli.run(["s3", "cp"])
    assert caught.value.exit_code == -9
    assert "exited -9" in caught.value.summary()


@pytest.mark.parametrize(
    ("stderr", "line"),
    [
        (
            "\nAn error occurred (NoSuchBucket) when calling ...\n",
            "An error occurred (NoSuchBucket) when calling ...",
        ),
        ("", "no error output"),
        # botocore prints an answer it can't parse (here s3rver's to STS) as a bytes literal
        (
            "\nUnable to parse response (syntax error: line 1, column 0), invalid XML received. "
            "Further retries may succeed:\nb'Not Found'\n",
            "an answer that is not XML: Not Found",
        ),
        (
            "Unable to parse response (...), invalid XML received:\nb'<html>\\n<b>502</b>'",
            "an answer that is not XML: <html> <b>502</b>",
        ),
        ("Unable to parse response (...):\nb''", "an answer that is not XML: (empty)"),
        ("b'a file named like a bytes literal'", "b'a file named like a bytes literal'"),
    ],
)
def test_last_line_of_stderr(stderr: str, line: str) -> None:
    assert last_line(stderr) == line


def test_values_that_start_with_a_dash_are_values(moto: Moto, aws_cli: str) -> None:
    """`--key -x` is an unknown option to the CLI's parser; `--key=-x` is a key."""
    moto.create_bucket("dash-bucket")
    moto.put("dash-bucket", "-x.txt", b"dash")
    cli = AwsCli(executable=aws_cli, region=REGION, endpoint_url=moto.url)
    head = cli.head_object("dash-bucket", "-x.txt")
    assert head is not None and head.size == 4
    assert cli.head_object("dash-bucket", "-missing") is None


@pytest.mark.parametrize(("size", "parts"), [(5, ""), (9 * MIB, "-2")])
def test_an_upload_stores_the_sha256_it_is_given(
    moto: Moto, aws_cli: str, tmp_path: Path, size: int, parts: str
) -> None:
    """What the proof of an SSE-KMS bucket stands on (scan/proof.py): each CLI passes
    `--metadata` on to a single-part and a multipart upload, and the head shows it."""
    moto.create_bucket("meta-bucket")
    source = tmp_path / "x.bin"
    source.write_bytes(os.urandom(size))
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    cli = AwsCli(executable=aws_cli, region=REGION, endpoint_url=moto.url)
    cli.upload_file(source, "meta-bucket", "run/x.bin", size=size, sha256=digest)
    head = cli.head_object("meta-bucket", "run/x.bin")
    assert head is not None and head.size == size
    assert head.etag.endswith(f'{parts}"') and head.etag.count("-") == bool(parts)
    assert head.sha256 == digest


def test_an_object_is_read_back_with_what_s3_said_of_it(
    moto: Moto, aws_cli: str, tmp_path: Path
) -> None:
    """keep's read-back of an object its ETag can't prove (scan/check.py), with each CLI:
    the bytes into the file named, the answer's ETag and size; a key that starts with a
    dash is a key."""
    moto.create_bucket("read-bucket")
    moto.put("read-bucket", "-run/x.dat", b"their bytes")
    cli = AwsCli(executable=aws_cli, region=REGION, endpoint_url=moto.url)
    dest = tmp_path / "x.read"
    got = cli.read_back("read-bucket", "-run/x.dat", dest, size=11)
    assert dest.read_bytes() == b"their bytes"
    assert got.size == 11 and got.etag.strip('"') == hashlib.md5(b"their bytes").hexdigest()


def test_a_missing_bucket_is_said_as_such(moto: Moto, aws_cli: str) -> None:
    """Each CLI's exit code (v1 255, v2 254) and its error text, which the scan classifies."""
    cli = AwsCli(executable=aws_cli, region=REGION, endpoint_url=moto.url)
    with pytest.raises(AwsCliError) as caught:
        cli.list_objects("no-such-bucket", "run/")
    assert caught.value.exit_code in (254, 255)
    assert classify(caught.value.stderr) is ErrorKind.NO_SUCH_BUCKET


def test_an_incomplete_multipart_upload_is_listed_and_aborted(moto: Moto, aws_cli: str) -> None:
    """The daemon's own abort (scan/leftovers.py): the listing under a prefix, a key that
    starts with a dash, and the abort, with each CLI."""
    moto.create_bucket("parts-bucket")
    for key in ("-run/x.bin", "other/y.bin"):
        moto.client.create_multipart_upload(Bucket="parts-bucket", Key=key)
    cli = AwsCli(executable=aws_cli, region=REGION, endpoint_url=moto.url)
    [upload] = cli.list_multipart_uploads("parts-bucket", "-run/")
    assert upload.key == "-run/x.bin"
    # v1 prints ...000Z, v2 ...+00:00; both read as the same instant (moto says this for all)
    moment = datetime(2010, 11, 10, 20, 48, 33, tzinfo=timezone.utc).timestamp()
    assert initiated_at(upload) == moment
    cli.abort_multipart_upload("parts-bucket", upload)
    assert cli.list_multipart_uploads("parts-bucket", "-run/") == []
    assert [u.key for u in cli.list_multipart_uploads("parts-bucket", "")] == ["other/y.bin"]


def test_the_recording_fake_answers_and_fails_as_the_seam_does() -> None:
    """The tests' fake (helpers.RecordingCli), with no process: an answered call gives the
    seam's typed result; an answer with an exit code the call does not accept is its
    AwsCliError, which the seam's methods map as they map the real CLI's (404: no object)."""

    def answer(args: list[str]) -> Result:
        if args[:2] == ["s3api", "list-buckets"]:
            return Result(0, '{"Buckets": [{"Name": "b-1"}]}', "")
        if args[-1] == "--key=gone":
            return Result(254, "", "An error occurred (404) when calling the HeadObject operation")
        return Result(254, "", "An error occurred (AccessDenied) when calling the HeadObject")

    cli = RecordingCli(executable="/nonexistent/aws", answer=answer)
    assert cli.list_buckets() == ["b-1"]
    assert cli.head_object("b-1", "gone") is None
    with pytest.raises(AwsCliError) as failed:
        cli.head_object("b-1", "denied")
    assert (failed.value.exit_code, classify(failed.value.stderr)) == (254, ErrorKind.ACCESS_DENIED)
    assert cli.commands() == ["s3api list-buckets", *["s3api head-object"] * 2]
    assert cli.calls[1] == ["s3api", "head-object", "--bucket=b-1", "--key=gone"]
