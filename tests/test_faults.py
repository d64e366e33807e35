"""Faults on the wire: after every scan, every file gone locally is byte-equal in S3."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fault_proxy import FaultProxy, fault_proxy
from helpers import Moto, make_uploader, tree, write

from awscli_uploader.awscli import AwsCli
from awscli_uploader.uploader import Uploader

Files = dict[tuple[str, str], bytes]


@pytest.fixture
def proxy(moto: Moto, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    # fewer retries keep the suite fast; the CLI's retry logic is not under test here
    monkeypatch.setenv("AWS_RETRY_MODE", "standard")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    with fault_proxy(moto.url) as running:
        yield running


def via(proxy: FaultProxy, root: Path, moto: Moto, aws_cli: str, **timeouts: int) -> Uploader:
    uploader = make_uploader(root, moto, aws_cli)
    uploader.cli = AwsCli(
        executable=aws_cli,
        region="eu-west-1",
        endpoint_url=proxy.url,
        connect_timeout=timeouts.get("connect", 2),
        read_timeout=timeouts.get("read", 5),
    )
    return uploader


def backlog(root: Path, moto: Moto, count: int = 6, big: int = 0) -> Files:
    files: Files = {}
    for bucket in ("fault-a", "fault-b"):
        moto.create_bucket(bucket)
        for i in range(count):
            key = f"run/{i:03d}.bin"
            files[bucket, key] = os.urandom(1000 + i)
    if big:
        files["fault-a", "run/big.bin"] = os.urandom(big)
    for (bucket, key), data in files.items():
        write(root / bucket / key, data)
    return files


def assert_nothing_lost(root: Path, moto: Moto, files: Files) -> int:
    """Each file is either still local and intact, or byte-equal in S3. Returns how many left."""
    left = 0
    for (bucket, key), data in files.items():
        local = root / bucket / key
        if local.exists():
            assert local.read_bytes() == data
            left += 1
        else:
            assert moto.get(bucket, key) == data, f"{bucket}/{key} deleted but S3 differs"
    return left


def drain(uploader: Uploader, root: Path, moto: Moto, files: Files) -> None:
    uploader.scan_once()
    assert tree(root) == []
    assert assert_nothing_lost(root, moto, files) == 0


@pytest.mark.parametrize(
    ("fault", "method"),
    [
        ("500", "PUT"),
        ("503", "PUT"),
        ("reset-before", "PUT"),
        ("reset-after", "PUT"),
        ("corrupt", "PUT"),
        ("403-expired", ".*"),
        ("500", "GET"),
    ],
)
def test_fault_on_every_request(
    fault: str, method: str, root: Path, moto: Moto, proxy: FaultProxy, aws_cli: str
) -> None:
    files = backlog(root, moto)
    uploader = via(proxy, root, moto, aws_cli)
    proxy.add(fault, method=method)
    stats = uploader.scan_once()
    assert proxy.injected > 0
    left = assert_nothing_lost(root, moto, files)
    if fault != "reset-after":  # S3 stored those; the CLI's retry may well have succeeded
        assert left == len(files)
        assert stats.failed > 0
    proxy.clear()
    drain(uploader, root, moto, files)


@pytest.mark.parametrize("fault", ["500", "503", "reset-before", "reset-after", "corrupt"])
def test_intermittent_faults_heal(
    fault: str, root: Path, moto: Moto, proxy: FaultProxy, aws_cli: str
) -> None:
    """A few failed requests: the CLI's retries or the next scan recover; nothing is lost."""
    files = backlog(root, moto, big=9 * 1024 * 1024)
    uploader = via(proxy, root, moto, aws_cli)
    proxy.add(fault, method="PUT", times=3)
    uploader.scan_once()
    assert proxy.injected == 3
    assert_nothing_lost(root, moto, files)
    drain(uploader, root, moto, files)


def test_endpoint_that_never_answers(
    root: Path, moto: Moto, proxy: FaultProxy, aws_cli: str
) -> None:
    files = backlog(root, moto, count=2)
    uploader = via(proxy, root, moto, aws_cli, read=1)
    proxy.add("hang", method="PUT")
    stats = uploader.scan_once()
    assert stats.failed > 0
    assert assert_nothing_lost(root, moto, files) == len(files)
    proxy.clear()
    drain(uploader, root, moto, files)


def test_endpoint_that_is_down_then_back(
    root: Path, moto: Moto, aws_cli: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    files = backlog(root, moto, count=2)
    uploader = make_uploader(root, moto, aws_cli)
    live = uploader.cli
    uploader.cli = AwsCli(
        executable=aws_cli, region="eu-west-1", endpoint_url="http://127.0.0.1:9", connect_timeout=1
    )
    stats = uploader.scan_once()
    assert stats.failed == len(files)
    assert assert_nothing_lost(root, moto, files) == len(files)
    uploader.cli = live
    drain(uploader, root, moto, files)
