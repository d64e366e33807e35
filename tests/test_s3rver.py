"""The same jobs against a second S3 implementation (npm s3rver), with both AWS CLIs.

s3rver has no STS, as MinIO-style stores don't, so the start-up check must use S3 itself."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from helpers import REGION, S3rver, run_cli, tree, write

from awscli_uploader.s3.awscli import AwsCli
from awscli_uploader.s3.multipart import abort_ours

MIB = 1024 * 1024
ODD = ("a b/c d.txt", "#hash%25+plus.bin", "ünïcödé/ключ.txt", "x/--recursive", "q?&=.txt")


@pytest.mark.slow
def test_drain_odd_names_and_a_multipart_file(root: Path, s3rver: S3rver, aws_cli: str) -> None:
    files = {("store-a", f"run/{i:02d}.bin"): os.urandom(1000 + i) for i in range(6)}
    files.update({("store-b", name): name.encode() * 3 for name in ODD})
    files["store-b", "big/multipart.bin"] = os.urandom(9 * MIB)  # over the CLI's 8 MiB
    for bucket in ("store-a", "store-b"):
        s3rver.create_bucket(bucket)
    for (bucket, key), data in files.items():
        write(root / bucket / key, data)
    result = run_cli("--once", "-d", str(root), "--endpoint-url", s3rver.url, "--aws-cli", aws_cli)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "AWS access ok" in result.stdout
    assert tree(root) == []
    for (bucket, key), data in files.items():
        assert s3rver.get(bucket, key) == data, key
    assert s3rver.keys("store-b") == sorted(key for b, key in files if b == "store-b")


def test_wrong_key_exits_4_with_the_credentials_hint(
    root: Path, s3rver: S3rver, aws_cli: str
) -> None:
    env = {"AWS_ACCESS_KEY_ID": "NOBODY"}
    result = run_cli(
        "--once", "-d", str(root), "--endpoint-url", s3rver.url, "--aws-cli", aws_cli, env=env
    )
    assert result.returncode == 4
    assert "invalid or expired" in result.stderr
    assert "InvalidAccessKeyId" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_key_exits_4_with_the_configure_hint(
    root: Path, s3rver: S3rver, aws_cli: str
) -> None:
    env = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}
    result = run_cli(
        "--once", "-d", str(root), "--endpoint-url", s3rver.url, "--aws-cli", aws_cli, env=env
    )
    assert result.returncode == 4
    assert "no AWS credentials found" in result.stderr


def test_a_store_without_the_multipart_listing_is_said_and_survived(
    s3rver: S3rver, aws_cli: str
) -> None:
    """s3rver answers ListMultipartUploads with NotImplemented: the cleanup says so (the
    bucket run says it once) and never raises."""
    s3rver.create_bucket("no-listing")
    cli = AwsCli(executable=aws_cli, region=REGION, endpoint_url=s3rver.url)
    cleanup = abort_ours(cli, "no-listing", ["run/big.bin"], time.time())
    assert cleanup.unsupported
    assert cleanup.aborted == [] and "NotImplemented" in (cleanup.problem or "")
