"""Soak: a writer creates and appends files while the daemon runs through injected faults.

Afterwards every byte written is in S3, nothing is left, and the daemon's memory and
open file descriptors stayed flat. `pytest --soak-seconds 600` runs it longer.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from pathlib import Path

import pytest
from fault_proxy import FaultProxy
from helpers import Files, Moto, Running, assert_drained, start_daemon, tree

FAULT_PLAN = ("500", "503", "403-expired", "reset-before", "reset-after", "corrupt")


def _writer(root: Path, stop: threading.Event, written: Files, seed: int) -> None:
    """Files grow in chunks a tenth of a second apart, then are closed and left alone."""
    rng = random.Random(seed)
    n = 0
    while not stop.is_set():
        n += 1
        key = f"run/{n // 50:03d}/writer{seed}-{n:05d}.dat"
        path = root / ("soak-a" if n % 2 else "soak-b") / key
        path.parent.mkdir(parents=True, exist_ok=True)
        data = b""
        with open(path, "ab") as handle:
            for _ in range(rng.randint(1, 4)):
                chunk = rng.randbytes(rng.randint(0, 40_000))
                handle.write(chunk)
                handle.flush()
                data += chunk
                time.sleep(0.1)
        written[path.relative_to(root).parts[0], key] = data


def _sample(pid: int) -> tuple[int, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS")))
    return rss_kb, len(os.listdir(f"/proc/{pid}/fd"))


@pytest.mark.slow
def test_soak(
    tmp_path: Path,
    root: Path,
    moto: Moto,
    proxy: FaultProxy,
    one_cli: str,
    request: pytest.FixtureRequest,
) -> None:
    seconds = float(request.config.getoption("--soak-seconds"))
    moto.create_bucket("soak-a")
    moto.create_bucket("soak-b")
    written: Files = {}
    stop = threading.Event()
    rng = random.Random(7)
    samples: list[tuple[int, int]] = []
    log = tmp_path / "daemon.log"
    args = ["-d", str(root), "-i", "1", "-s", "1", "--endpoint-url", proxy.url]
    daemon = start_daemon(*args, "--aws-cli", one_cli, log=log)  # the proxy's retry settings
    writers = [
        threading.Thread(target=_writer, args=(root, stop, written, seed)) for seed in (1, 2)
    ]
    try:
        # faults once it watches: one at the start-up access check would end the run
        Running(daemon, log).wait_for("watching")
        for thread in writers:
            thread.start()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            # each kind in turn: a short soak (the default 8 s) adds each of them
            fault = FAULT_PLAN[len(samples) % len(FAULT_PLAN)]
            proxy.add(fault, method=rng.choice(["PUT", "GET"]), times=2)
            samples.append(_sample(daemon.pid))
            time.sleep(1)
        stop.set()
        for thread in writers:
            thread.join()
        proxy.clear()
        deadline = time.monotonic() + 120
        while tree(root):
            assert daemon.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"not drained: {tree(root)[:5]}"
            time.sleep(0.5)
        samples.append(_sample(daemon.pid))
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(60) == 0
    finally:
        stop.set()
        if daemon.poll() is None:
            daemon.kill()
    assert proxy.injected > 0
    assert len(written) > 10
    assert_drained(root, moto, written)
    third = max(1, len(samples) // 3)
    early_rss = max(rss for rss, _ in samples[:third])
    late_rss = max(rss for rss, _ in samples[-third:])
    early_fds = max(fds for _, fds in samples[:third])
    # a leak outlives the work: the sample after the drain (no aws process, no lease open)
    # against the busiest early moment
    late_fds = samples[-1][1]
    assert late_rss <= early_rss * 1.25 + 8_000, (early_rss, late_rss)
    assert late_fds <= early_fds + 2, (early_fds, late_fds)
    print(
        f"soak: {seconds:.0f}s, {len(written)} files, {proxy.injected} faults injected, "
        f"RSS {early_rss}->{late_rss} kB, fds {early_fds}->{late_fds}"
    )
