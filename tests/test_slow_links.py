"""Slow links: an upload that moves is never killed, one that hangs mid-body is ended.

The proxy caps the upload bandwidth (a slow laptop uplink) or stops reading a body half-way;
the AWS CLI behind it is real (v1 and v2) and so is the S3 (moto)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fault_proxy import FaultProxy, fault_proxy
from helpers import REGION, Moto, make_uploader, tree, write

from awscli_uploader.s3.awscli import AwsCli

MIB = 1024 * 1024
RATE = 256 * 1024  # bytes/s, a 2 Mbit/s uplink


@pytest.fixture
def proxy(moto: Moto, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    monkeypatch.setenv("AWS_RETRY_MODE", "standard")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    with fault_proxy(moto.url) as running:
        yield running


def test_a_throttled_upload_outlasting_the_old_timeout_finishes(
    tmp_path: Path, moto: Moto, proxy: FaultProxy, aws_cli: str
) -> None:
    """The old rule (base + size at 1 MiB/s) made small through the fields: 1 s + 2 s here.
    The upload takes about 8 s at 256 KiB/s, and must finish: only the watchdog can let it."""
    moto.create_bucket("slow-link")
    data = os.urandom(2 * MIB)
    write(tmp_path / "batch" / "run" / "big.bin", data)
    proxy.rate = RATE
    cli = AwsCli(
        executable=aws_cli,
        region=REGION,
        endpoint_url=proxy.url,
        api_timeout=1.0,
        min_rate=MIB,
        stall_seconds=30,
    )
    old_timeout = cli.api_timeout + len(data) / cli.min_rate
    started = time.monotonic()
    result = cli.upload_tree(tmp_path / "batch", "slow-link", total_bytes=len(data))
    took = time.monotonic() - started
    print(f"throttled upload of 2 MiB at {RATE // 1024} KiB/s: {took:.1f}s, old {old_timeout}s")
    assert result.exit_code == 0, result.stderr
    assert moto.get("slow-link", "run/big.bin") == data
    assert took > 2 * old_timeout


def test_an_upload_hung_mid_body_is_ended_and_the_file_stays(
    root: Path, moto: Moto, proxy: FaultProxy, aws_cli: str
) -> None:
    """The proxy reads 64 KiB of the body, then nothing: the CLI's read timeout (60 s) would
    take a minute per attempt (two here: over 120 s); the stall window (3 s here) ends it.
    The CLI, interrupted, can't abort through the hung link: the kill after the grace (1 s
    here, 10 s by default; test_lifecycle.py holds the grace itself) ends it."""
    moto.create_bucket("hung-link")
    data = os.urandom(MIB)
    write(root / "hung-link" / "run" / "a.bin", data)
    uploader = make_uploader(root, moto, aws_cli)
    uploader.cli = AwsCli(
        executable=aws_cli, region=REGION, endpoint_url=proxy.url, stall_seconds=3, cancel_grace=1
    )
    proxy.add("stall-body", method="PUT")
    started = time.monotonic()
    stats = uploader.scan_once()
    took = time.monotonic() - started
    print(f"hung upload ended after {took:.1f}s (stall window 3 s, read timeout 60 s)")
    assert stats.failed == 1
    assert (root / "hung-link" / "run" / "a.bin").read_bytes() == data
    assert took < 30  # a loaded machine's slow CLI start-ups included
    proxy.clear()
    uploader.scan_once()
    assert tree(root) == []
    assert moto.get("hung-link", "run/a.bin") == data
