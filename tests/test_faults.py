"""Faults on the wire: after every scan, every file gone locally is byte-equal in S3."""

from __future__ import annotations

import os
import re
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

from awscli_uploader.scan.uploader import Uploader


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


PUT_FAULTS = ("500", "503", "reset-before", "reset-after", "corrupt")


def fault_each_file(proxy: FaultProxy, files: Files, **rule: object) -> dict[Path, str]:
    """One kind of PUT fault for each of the first len(PUT_FAULTS) files: {local path: fault}."""
    faulted = {}
    for (bucket, key), fault in zip(files, PUT_FAULTS, strict=False):
        proxy.add(fault, method="PUT", path=re.escape(f"/{bucket}/{key}"), **rule)
        faulted[Path(bucket, key)] = fault
    assert len(faulted) == len(PUT_FAULTS)
    return faulted


@pytest.mark.slow
def test_fault_on_every_put_of_a_file(
    root: Path, moto: Moto, proxy: FaultProxy, aws_cli: str
) -> None:
    """Each kind of fault on every PUT of its own file, all in one batch: each file stays
    local (but the reset-after one: S3 stored it, and the CLI's retry may well have
    succeeded) or is byte-equal in S3; once the faults stop, the next scan moves them."""
    files = backlog(root, moto, count=len(PUT_FAULTS))
    uploader = via(proxy, root, moto, aws_cli)
    faulted = fault_each_file(proxy, files)
    stats = uploader.scan_once()
    assert {rule.fault for rule in proxy.rules if rule.hits} == set(PUT_FAULTS)
    assert_nothing_lost(root, moto, files)
    failing = [path for path, fault in faulted.items() if fault != "reset-after"]
    assert [path for path in failing if not (root / path).exists()] == []
    assert stats.failed >= len(failing)
    proxy.clear()
    drain(uploader, root, moto, files)


@pytest.mark.slow
@pytest.mark.parametrize(("fault", "method"), [("403-expired", ".*"), ("500", "GET")])
def test_fault_on_every_request(
    fault: str, method: str, root: Path, moto: Moto, proxy: FaultProxy, aws_cli: str
) -> None:
    files = backlog(root, moto)
    uploader = via(proxy, root, moto, aws_cli)
    proxy.add(fault, method=method)
    stats = uploader.scan_once()
    assert proxy.injected > 0
    assert assert_nothing_lost(root, moto, files) == len(files)
    assert stats.failed > 0
    proxy.clear()
    drain(uploader, root, moto, files)


@pytest.mark.slow
def test_intermittent_faults_heal(root: Path, moto: Moto, proxy: FaultProxy, one_cli: str) -> None:
    """One failed request of each kind in one batch, each on its own file's PUT, and two on
    a multipart file's parts: the CLI's retries or the next scan recover; nothing is lost."""
    files = backlog(root, moto, count=len(PUT_FAULTS), big=9 * 1024 * 1024)
    uploader = via(proxy, root, moto, one_cli)
    fault_each_file(proxy, files, times=1)
    proxy.add("corrupt", method="PUT", path=r"/fault-a/run/big\.bin\?.*partNumber=1", times=1)
    proxy.add("500", method="PUT", path=r"/fault-a/run/big\.bin\?.*partNumber=2", times=1)
    uploader.scan_once()
    assert proxy.injected == len(PUT_FAULTS) + 2
    assert_nothing_lost(root, moto, files)
    drain(uploader, root, moto, files)


@pytest.mark.slow
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


@pytest.mark.slow
def test_endpoint_that_is_down_then_back(
    root: Path, moto: Moto, one_cli: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    files = backlog(root, moto)
    down = make_uploader(root, moto, one_cli, endpoint="http://127.0.0.1:9", connect_timeout=1)
    stats = down.scan_once()
    assert stats.failed == len(files)
    assert assert_nothing_lost(root, moto, files) == len(files)
    drain(make_uploader(root, moto, one_cli), root, moto, files)
