"""Spot interruptions against the fake metadata service: notices seen during uploads,
rebalance recommendations as an early drain, back-to-back scans, a measured drain rate."""

from __future__ import annotations

import logging
import signal
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from fake_imds import ImdsState, fake_imds
from fault_proxy import fault_proxy
from helpers import Moto, daemon, make_uploader, write

from awscli_uploader.ec2.imds import Imds
from awscli_uploader.ec2.spot import SAFETY_SECONDS, SpotWatch, parse_rebalance
from awscli_uploader.scan.deadline import DEFAULT_RATE, DrainRate, fit_before_deadline

LOG = logging.getLogger("awscli_uploader.test")
MiB = 1024 * 1024


class _File:
    def __init__(self, size: int) -> None:
        self.size = size


@pytest.mark.parametrize(
    ("sizes", "seconds", "rate", "fit"),
    [
        ([1, 2, 3], 60, 10 * MiB, [1, 2, 3]),
        ([1, 1000 * MiB], 60, 10 * MiB, [1]),  # 1 GB can't make it in 55 s at 10 MiB/s
        ([1, 1000 * MiB], 60, 100 * MiB, [1, 1000 * MiB]),  # at a measured 100 MiB/s it can
        ([5, 1], 4, 10 * MiB, []),  # less than the per-batch overhead: start nothing
        ([3, 2, 2], 6, 4, [2, 2]),  # smallest first, until the budget (4 bytes) is spent
        ([1], -30, 10 * MiB, []),  # the deadline has passed
    ],
)
def test_fit_before_deadline(sizes: list[int], seconds: float, rate: float, fit: list[int]) -> None:
    chosen, late = fit_before_deadline([_File(s) for s in sizes], seconds, rate)
    assert [c.size for c in chosen] == fit
    assert sorted(c.size for c in chosen + late) == sorted(sizes)


@pytest.mark.parametrize(
    ("window", "samples", "rate"),
    [
        (20, [], DEFAULT_RATE),  # no history: the conservative default
        (20, [(100, 1.0)], 100),
        (20, [(100, 1.0), (300, 1.0)], 200),  # bytes over seconds, not a mean of rates
        (20, [(0, 5.0), (100, 1.0)], 100),  # batches that moved nothing say nothing
        (20, [(100, 0.0)], DEFAULT_RATE),
        (2, [(1, 1.0)] * 3 + [(50, 1.0)] * 2, 50),  # only the most recent batches count
    ],
)
def test_drain_rate(window: int, samples: list[tuple[int, float]], rate: float) -> None:
    drain = DrainRate(samples=window)
    for size, seconds in samples:
        drain.record(size, seconds)
    assert drain.rate() == rate


@pytest.mark.parametrize(
    ("body", "when"),
    [
        ('{"noticeTime": "2026-11-24T00:00:00Z"}', "2026-11-24T00:00:00Z"),
        (None, None),
        ("", None),
        ("<html>not json</html>", None),
        ('{"other": 1}', None),
    ],
)
def test_parse_rebalance(body: str | None, when: str | None) -> None:
    assert parse_rebalance(body) == when


def _iso(seconds_from_now: float) -> str:
    when = datetime.now(timezone.utc) + timedelta(seconds=seconds_from_now)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_watch_nothing_then_rebalance_then_notice() -> None:
    state = ImdsState()
    deadlines: list[float | None] = []
    notices: list[float] = []  # where the daemon cancels what is still uploading
    with fake_imds(state) as url:
        watch = SpotWatch(Imds(endpoint=url), LOG, deadlines.append, on_notice=notices.append)
        watch.poll()
        assert (watch.draining, deadlines) == (False, [None])

        state.rebalance = {"noticeTime": "2026-11-24T00:00:00Z"}
        watch.poll()
        assert watch.draining and watch.rebalance == "2026-11-24T00:00:00Z"
        assert deadlines[-1] is None  # a rebalance drains, but sets no deadline

        state.spot_action = {"action": "terminate", "time": _iso(60)}
        watch.poll()
        assert watch.notice is not None
        fixed = deadlines[-1]
        assert fixed is not None
        assert 60 - SAFETY_SECONDS - 2 <= fixed - time.monotonic() <= 60 - SAFETY_SECONDS + 1
        watch.poll()
        assert deadlines[-1] == fixed  # a notice's deadline does not slide
        assert notices == [fixed]  # the rebalance alone never cancels; the notice, once
    assert any("rebalance" in r for r in state.requests)


def test_a_rebalance_is_a_window_not_a_latch() -> None:
    """AWS keeps showing a recommendation: it drains for the window once, then the daemon
    is back to its interval; a new recommendation opens a new window."""
    state = ImdsState(rebalance={"noticeTime": "2026-11-24T00:00:00Z"})
    deadlines: list[float | None] = []
    with fake_imds(state) as url:
        watch = SpotWatch(Imds(endpoint=url), LOG, deadlines.append, rebalance_window=0.5)
        watch.poll()
        assert watch.draining
        time.sleep(0.6)
        watch.poll()  # the same recommendation, still shown
        assert not watch.draining
        state.rebalance = {"noticeTime": "2026-11-24T01:00:00Z"}
        watch.poll()
        assert watch.draining
    assert set(deadlines) == {None}


def test_the_group_terminating_the_instance_starts_a_drain_without_a_deadline() -> None:
    state = ImdsState(lifecycle_state="InService")
    deadlines: list[float | None] = []
    with fake_imds(state) as url:
        watch = SpotWatch(Imds(endpoint=url), LOG, deadlines.append, lifecycle=True)
        watch.poll()
        assert not watch.draining
        state.lifecycle_state = "Terminated"
        watch.poll()
        assert watch.terminating and watch.draining and deadlines[-1] is None


def test_watch_thread_sees_a_notice_while_the_caller_is_busy() -> None:
    state = ImdsState()
    deadlines: list[float | None] = []
    with fake_imds(state) as url:
        watch = SpotWatch(Imds(endpoint=url), LOG, deadlines.append, poll_seconds=0.1)
        watch.start()
        try:
            state.spot_action = {"action": "stop", "time": _iso(120)}
            assert watch.alert.wait(5)  # nobody called poll(): the thread did
            assert deadlines[-1] is not None
        finally:
            watch.close()


EC2 = {"AWS_EC2_METADATA_DISABLED": "false"}


def _lines(output: str, text: str) -> list[int]:
    return [i for i, line in enumerate(output.splitlines()) if text in line]


def test_notice_during_a_long_upload_is_seen_before_it_ends(
    tmp_path: Path, moto: Moto, root: Path
) -> None:
    moto.create_bucket("spot-bucket")
    state = ImdsState()
    started = threading.Event()

    def slow_put(method: str, path: str) -> None:
        started.set()
        time.sleep(9)

    with fake_imds(state) as url, fault_proxy(moto.url) as proxy:
        proxy.add("hook", method="PUT", path="/spot-bucket/", hook=slow_put)
        env = {**EC2, "AWS_EC2_METADATA_SERVICE_ENDPOINT": url}
        write(root / "spot-bucket" / "big.bin", b"b" * 1000)
        args = ["-d", str(root), "-i", "600", "-s", "0", "--endpoint-url", proxy.url]
        with daemon(tmp_path, *args, env=env) as run:
            assert started.wait(60), run.output()
            state.spot_action = {"action": "terminate", "time": "2099-01-01T00:00:00Z"}
            run.wait_for("scan: uploaded 1 ", timeout=60)
            output = run.output()
            assert _lines(output, "spot interruption notice")[0] < _lines(output, "scan:")[0]
            run.proc.send_signal(signal.SIGTERM)
            assert run.proc.wait(30) == 0


@pytest.mark.slow
def test_after_a_notice_scans_follow_without_the_interval(
    tmp_path: Path, moto: Moto, root: Path
) -> None:
    moto.create_bucket("spot-bucket")
    state = ImdsState()
    with fake_imds(state) as url:
        env = {**EC2, "AWS_EC2_METADATA_SERVICE_ENDPOINT": url}
        args = ["-d", str(root), "-i", "600", "-s", "0", "--endpoint-url", moto.url]
        with daemon(tmp_path, *args, env=env) as run:
            run.wait_for("scan:")
            state.spot_action = {"action": "terminate", "time": "2099-01-01T00:00:00Z"}
            run.wait_for("spot interruption notice", timeout=20)
            for name in ("first.txt", "second.txt"):  # each a scan of its own, no 600 s wait
                write(root / "spot-bucket" / name, name.encode())
                run.wait_for(f"spot-bucket/{name}: uploaded", timeout=45)
            assert moto.keys("spot-bucket") == ["first.txt", "second.txt"]
            run.proc.send_signal(signal.SIGTERM)
            assert run.proc.wait(30) == 0


def test_rebalance_recommendation_drains_early(tmp_path: Path, moto: Moto, root: Path) -> None:
    moto.create_bucket("spot-bucket")
    state = ImdsState()
    with fake_imds(state) as url:
        env = {**EC2, "AWS_EC2_METADATA_SERVICE_ENDPOINT": url}
        args = ["-d", str(root), "-i", "600", "-s", "0", "--endpoint-url", moto.url]
        with daemon(tmp_path, *args, env=env) as run:
            run.wait_for("scan:")
            write(root / "spot-bucket" / "result.png", b"result")
            state.rebalance = {"noticeTime": "2026-11-24T00:00:00Z"}
            run.wait_for("spot rebalance recommendation", timeout=20)
            run.wait_for("uploaded 1 ", timeout=20)
            assert moto.get("spot-bucket", "result.png") == b"result"
            assert "spot interruption notice" not in run.output()
            run.proc.send_signal(signal.SIGTERM)
            assert run.proc.wait(30) == 0


@pytest.mark.slow
def test_the_measured_rate_decides_what_races_the_deadline(
    root: Path, moto: Moto, one_cli: str, caplog: pytest.LogCaptureFixture
) -> None:
    moto.create_bucket("rate-bucket")
    uploader = make_uploader(root, moto, one_cli)
    write(root / "rate-bucket" / "first.bin", b"1" * 4096)
    assert uploader.scan_once().uploaded == 1
    measured = uploader.drain.rate()
    assert measured != DEFAULT_RATE  # the upload was recorded
    assert 0 < measured < 4096 / 0.001

    write(root / "rate-bucket" / "big.bin", b"2" * 4096)
    uploader.drain = DrainRate()
    uploader.drain.record(100, 1.0)  # a link this slow can't move 4 KiB in 15 s
    uploader.set_deadline(time.monotonic() + 20)
    with caplog.at_level(logging.WARNING):
        assert uploader.scan_once().uploaded == 0
    assert "no time to upload before the interruption; kept" in caplog.text
    uploader.drain.record(10 * MiB, 1.0)
    uploader.set_deadline(time.monotonic() + 60)  # the same kind of deadline, a fast link
    assert uploader.scan_once().uploaded == 1
