"""Faults on the wire: after every scan, every file gone locally is byte-equal in S3."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fault_proxy import FaultProxy
from helpers import (
    Files,
    Moto,
    assert_drained,
    assert_nothing_lost,
    make_uploader,
    put_files,
)

from awscli_uploader.uploader import Uploader


def via(proxy: FaultProxy, root: Path, moto: Moto, aws_cli: str, read: int = 5) -> Uploader:
    return make_uploader(
        root, moto, aws_cli, endpoint=proxy.url, connect_timeout=2, read_timeout=read
    )


def backlog(root: Path, moto: Moto, count: int = 2, big: int = 0) -> Files:
    """`count` files in one bucket: every file that S3 fails to match costs its own
    head-object, and every bucket its own aws processes, so a few files in one bucket show
    the behaviour as well as many in several."""
    files: Files = {}
    moto.create_bucket("fault-a")
    for i in range(count):
        files["fault-a", f"run/{i:03d}.bin"] = os.urandom(1000 + i)
    if big:
        files["fault-a", "run/big.bin"] = os.urandom(big)
    return put_files(root, files)


def drain(uploader: Uploader, root: Path, moto: Moto, files: Files) -> None:
    """Once the faults stop, the next scan moves everything."""
    uploader.scan_once()
    assert_drained(root, moto, files)


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
    files = backlog(root, moto)
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
    files = backlog(root, moto)
    down = make_uploader(root, moto, aws_cli, endpoint="http://127.0.0.1:9", connect_timeout=1)
    stats = down.scan_once()
    assert stats.failed == len(files)
    assert assert_nothing_lost(root, moto, files) == len(files)
    drain(make_uploader(root, moto, aws_cli), root, moto, files)
