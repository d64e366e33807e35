"""The daemon loop in-process: scans, the stop event, a root that comes late, spot notices.

The uploader is a small stand-in that counts scans; the real scan is tested elsewhere.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fake_imds import ImdsState, fake_imds
from helpers import RecordingCli, tally, write

from awscli_uploader import daemon as daemon_module
from awscli_uploader.config import Config
from awscli_uploader.daemon import Daemon, Volume, drained
from awscli_uploader.ec2.imds import Imds
from awscli_uploader.ec2.spot import SpotWatch
from awscli_uploader.errors import ConfigError
from awscli_uploader.local.filters import parse_excludes
from awscli_uploader.local.state import StateDir
from awscli_uploader.local.volume import left_on_volume, on_volume
from awscli_uploader.ops.notify import notify
from awscli_uploader.s3.awscli import AwsCli, Result
from awscli_uploader.scan.leftovers import Leftovers
from awscli_uploader.scan.record import Stats

LOG = logging.getLogger("awscli_uploader.test.daemon")


@dataclass
class CountingUploader:
    """Counts scans; sets the stop event after `stop_after` of them."""

    stop_after: int = 2
    scans: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    deadlines: list[float | None] = field(default_factory=list)
    suspects: set[tuple[str, str]] = field(default_factory=set)
    leftovers: Leftovers = field(default_factory=lambda: Leftovers(StateDir(Path("/nowhere"))))
    cli: AwsCli = field(default_factory=AwsCli)  # a stop's timer cancels its (no) processes
    results: list[Stats] = field(default_factory=list)  # what each scan says, in turn

    def suspect(self, keys: Iterable[tuple[str, str]]) -> None:
        self.suspects.update(keys)

    def scan_once(self) -> Stats:
        self.scans += 1
        if self.scans >= self.stop_after:
            self.stop.set()
        return self.results.pop(0) if self.results else Stats()

    def set_deadline(self, when: float | None) -> None:
        self.deadlines.append(when)


def _daemon(root: Path, uploader: CountingUploader, **config: object) -> Daemon:
    return Daemon(Config(root=root, interval=0.01, **config), uploader, LOG)  # type: ignore[arg-type]


def test_scans_until_the_stop_event(root: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOG.name)
    uploader = CountingUploader(stop_after=3)
    _daemon(root, uploader).run_forever()
    assert uploader.scans == 3
    assert caplog.records[-1].getMessage() == "stopped"


def test_run_once_cleans_staging_and_holds_the_lock(root: Path) -> None:
    state = StateDir(root)
    stale = write(state.staging("my-bucket") / "run" / "k", b"left by a killed run")
    write(
        state.trash.place(root / "other-bucket" / "d" / "proven.txt"),
        b"proven, renamed, never unlinked",
    )
    uploader = CountingUploader()
    _daemon(root, uploader).run_once()
    assert uploader.scans == 1
    assert not stale.exists()
    assert (root / "other-bucket" / "d" / "proven.txt").exists()
    # S3 may hold both: they are looked up before any upload
    assert uploader.suspects == {("my-bucket", "run/k"), ("other-bucket", "d/proven.txt")}
    assert state.lock_file.read_text().strip() == str(os.getpid())


def test_waits_for_a_root_that_comes_late(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(daemon_module, "ROOT_POLL_SECONDS", 0.02)
    root = tmp_path / "later"
    threading.Timer(0.2, root.mkdir).start()
    uploader = CountingUploader(stop_after=1)
    _daemon(root, uploader).run_forever()
    assert uploader.scans == 1


def test_a_root_that_is_a_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_text("")
    with pytest.raises(ConfigError, match="not a directory"):
        _daemon(path, CountingUploader()).run_forever()


def test_stop_signal_sets_the_event_the_scan_sees(root: Path) -> None:
    uploader = CountingUploader()
    daemon = _daemon(root, uploader)
    previous = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    try:
        daemon.install_signal_handlers()
        os.kill(os.getpid(), signal.SIGTERM)
        assert uploader.stop.wait(2)
    finally:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])


def test_a_spot_notice_cuts_the_sleep_and_sets_a_deadline(root: Path) -> None:
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 100))
    state = ImdsState(spot_action={"action": "terminate", "time": when})
    with fake_imds(state) as url:
        uploader = CountingUploader(stop_after=2)
        spot = SpotWatch(Imds(endpoint=url), LOG, uploader.set_deadline, poll_seconds=0.05)
        config = Config(root=root, interval=3600)
        daemon = Daemon(config, uploader, LOG, Imds(endpoint=url), spot)  # type: ignore[arg-type]
        started = time.monotonic()
        daemon.run_forever()
    assert time.monotonic() - started < 30  # not the hour's interval
    assert uploader.scans == 2
    deadline = uploader.deadlines[-1]
    assert deadline is not None
    assert 60 < deadline - started < 100  # the notice's time less the safety margin


def test_a_trash_entry_that_cannot_be_put_back_stops_nothing(
    root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A file now sits where the trashed file's directory was: one ERROR that names it and
    says what to do, the entry stays, the scan runs; the next start tries again."""
    state = StateDir(root)
    trashed = state.trash.dir / "b-1" / "d" / "proven.txt"
    trashed.parent.mkdir(parents=True)
    trashed.write_bytes(b"proven, renamed, never unlinked")
    (root / "b-1").mkdir()
    (root / "b-1" / "d").write_bytes(b"a file where the directory was")
    uploader = CountingUploader()
    with caplog.at_level(logging.INFO):
        _daemon(root, uploader).run_once()
    assert uploader.scans == 1
    assert trashed.read_bytes() == b"proven, renamed, never unlinked"
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "proven.txt" in errors[0] and "move it back by hand" in errors[0]


@pytest.mark.parametrize(
    ("counts", "waiting", "done"),
    [
        ({}, 0, True),
        ({"uploaded": 3}, 0, False),  # it moved files: there may be more
        ({"present": 1}, 0, False),
        ({"failed": 5}, 0, False),  # S3 down: not drained, whatever else it says
        ({}, 2, False),  # files left under the root (still being written, or not uploadable)
        ({"unstable": 1}, 1, False),
        ({"ignored": 1, "excluded": 4}, 0, True),  # nothing under the root waits
    ],
)
def test_drained(counts: dict[str, int], waiting: int, done: bool) -> None:
    assert drained(Stats(tally(**counts)), waiting) is done


def _denied_to_ec2(args: list[str]) -> Result:
    return Result(254 if args[0] == "ec2" else 0, "", "An error occurred (AccessDenied)")


def _terminating(
    root: Path,
    results: list[Stats],
    stop_after: int,
    *,
    answer: Callable[[list[str]], Result] = _denied_to_ec2,
    volume: Volume = on_volume,
    **config: object,
) -> tuple[RecordingCli, list[int]]:
    """A daemon on an instance whose group terminates it: the aws calls it made, and the
    scan each was made after (`config`: more settings; `answer`: the calls' answers, by
    default an ec2 call fails). The root is a directory in tmp_path, not a mount point:
    the walk alone (`volume`) stands for the data volume mounted there, unless a test
    asks for the daemon's own check (`left_on_volume`)."""
    state = ImdsState(lifecycle_state="Terminated", region="eu-central-1")
    at: list[int] = []
    uploader = CountingUploader(stop_after=stop_after)

    def recorded(args: list[str]) -> Result:
        at.append(uploader.scans)
        return answer(args)

    uploader.cli = cli = RecordingCli(
        region="eu-west-1", endpoint_url="http://s3.example", answer=recorded
    )
    uploader.results = results
    with fake_imds(state) as url:
        spot = SpotWatch(Imds(endpoint=url), LOG, uploader.set_deadline, lifecycle=True)
        settings = Config(
            root=root,
            interval=3600,
            lifecycle_hook="drain-hook",
            autoscaling_group="sim-uploader",
            **config,  # type: ignore[arg-type]
        )
        daemon = Daemon(settings, uploader, LOG, Imds(endpoint=url), spot, volume)  # type: ignore[arg-type]
        spot.poll()  # the news came before the scans
        started = time.monotonic()
        daemon.run_forever()
    assert time.monotonic() - started < 30  # back to back, not the hour's interval
    assert uploader.deadlines[-1] is None  # the hook holds the instance: no deadline
    return cli, at


def test_the_group_s_termination_drains_then_completes_the_hook(root: Path) -> None:
    """The target lifecycle state turns Terminated: scans back to back; once a scan failed
    nothing, moved nothing and left nothing under the root, one complete-lifecycle-action,
    in the instance's own region and not to the S3 endpoint."""
    results = [Stats(tally(uploaded=3)), Stats(tally(failed=1)), Stats(), Stats()]
    cli, at = _terminating(root, results, stop_after=5)
    assert cli.calls == [COMPLETE]
    assert at == [3]  # after the third scan: the first that moved nothing and failed nothing
    assert cli.regions == ["eu-central-1"]  # the instance's own, not the buckets' region
    assert cli.endpoints == [None]  # Auto Scaling's own, not the S3 endpoint


def test_a_stop_during_the_drain_never_completes_the_hook(root: Path) -> None:
    """SIGTERM (a rollout's restart) mid-drain: the stopped scan proves nothing."""
    cli, _ = _terminating(root, [Stats(tally(failed=1)), Stats(tally(failed=1)), Stats()], 3)
    assert cli.calls == []


def test_files_left_under_the_root_keep_the_hook_waiting(root: Path) -> None:
    write(root / "b-1" / "result.png", b"not uploadable here: the fake scan moves nothing")
    cli, _ = _terminating(root, [Stats(), Stats()], stop_after=3)
    assert cli.calls == []


def test_a_rebalance_drains_for_its_window_then_the_interval_is_back(root: Path) -> None:
    state = ImdsState(rebalance={"noticeTime": "2026-11-24T00:00:00Z"})
    with fake_imds(state) as url:
        uploader = CountingUploader(stop_after=10_000)
        spot = SpotWatch(
            Imds(endpoint=url), LOG, uploader.set_deadline, poll_seconds=0.05, rebalance_window=2
        )
        daemon = Daemon(Config(root=root, interval=3600), uploader, LOG, Imds(endpoint=url), spot)  # type: ignore[arg-type]
        runner = threading.Thread(target=daemon.run_forever)
        runner.start()
        try:
            time.sleep(3.5)  # the 2 s window, and well past it
            during = uploader.scans
            time.sleep(1.5)
            after = uploader.scans
        finally:
            uploader.stop.set()
            runner.join(10)
    assert during >= 2  # back to back (a second apart) within the window
    assert after == during  # then the hour's interval again


COMPLETE = [
    "autoscaling",
    "complete-lifecycle-action",
    "--lifecycle-hook-name=drain-hook",
    "--auto-scaling-group-name=sim-uploader",
    f"--instance-id={ImdsState().instance_id}",
    "--lifecycle-action-result=CONTINUE",
]


def _modify(delete: str) -> list[str]:
    return [
        "ec2",
        "modify-instance-attribute",
        f"--instance-id={ImdsState().instance_id}",
        '--block-device-mappings=[{"DeviceName": "/dev/sdf", "Ebs": '
        f'{{"DeleteOnTermination": {delete}}}}}]',
    ]


RELEASE, KEEP = _modify("true"), _modify("false")


def _throttled(calls: list[list[str]]) -> Callable[[list[str]], Result]:
    """Answers that throttle each of `calls` once, in turn, and let every other call through."""
    due = [list(call) for call in calls]

    def answer(args: list[str]) -> Result:
        if due and args[: len(due[0])] == due[0]:
            due.pop(0)
            return Result(254, "", "An error occurred (Throttling): Rate exceeded")
        return Result(0, "", "")

    return answer


def test_a_drained_data_volume_goes_with_the_instance_set_just_before_the_hook(
    root: Path,
) -> None:
    """The launch template keeps the data volume after its instance; once the drain is
    proven and nothing at all is on the volume (the daemon's own records, lock and
    staging aside), it is set to be deleted with the instance, then the hook completed."""
    StateDir(root).path.mkdir()
    StateDir(root).last_scan.write_text("{}")
    write(StateDir(root).staging("b-1") / "k", b"a link to a file that is gone")
    (root / "b-1" / "emptied").mkdir(parents=True)
    cli, _ = _terminating(root, [Stats(tally(uploaded=1)), Stats()], 3, data_volume="/dev/sdf")
    # first, at the first scan that moves files: a run before this one may have released
    # the volume and died before its hook (the default answer fails ec2 calls: tried again)
    assert cli.calls == [KEEP, RELEASE, COMPLETE]
    assert cli.regions == ["eu-central-1"] * 3  # the instance's own region


def test_a_root_that_is_no_mount_point_keeps_the_volume_and_the_hook_completes(
    root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The data volume failed to mount (or was unmounted), and the daemon drains a plain
    directory: whatever the volume holds can't be seen, so it is kept; the hook is not
    held for it."""
    with caplog.at_level(logging.WARNING):
        cli, _ = _terminating(
            root,
            [Stats(), Stats()],
            3,
            answer=_throttled([]),
            volume=left_on_volume,  # the daemon's own check
            data_volume="/dev/sdf",
        )
    assert cli.calls == [KEEP, COMPLETE]  # KEEP: a run before this one may have released it
    assert any("is not a mount point" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("left", "excludes"),
    [
        ("b-1/partial.tmp", ["*.tmp"]),  # excluded: no scan uploads it, the backlog skips it
        ("notes.txt", []),  # directly under the root: no bucket
    ],
)
def test_a_file_no_scan_uploads_keeps_the_volume_and_the_hook_completes(
    root: Path, caplog: pytest.LogCaptureFixture, left: str, excludes: list[str]
) -> None:
    """The backlog is drained, so the hook completes; but the volume is not empty, so it is
    kept after the instance (one WARNING line says why), never set to go with the files.
    (The trash and the rest: tests/test_volume.py.)"""
    write(root / left, b"would be lost with the volume")
    cli, _ = _terminating(
        root,
        [Stats(), Stats()],
        3,
        answer=_throttled([]),
        data_volume="/dev/sdf",
        excludes=parse_excludes(excludes),
    )
    assert cli.calls == [KEEP, COMPLETE]  # kept at once: a run before may have released it
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    kept = [w for w in warnings if w.startswith("data volume /dev/sdf: kept after the instance")]
    assert len(kept) == 1 and os.path.basename(left) in kept[0]


def test_a_release_whose_hook_fails_is_undone_at_once_then_made_with_the_hook(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """complete-lifecycle-action is throttled: the volume must not stay released (the
    hook's timeout would delete it with what a later scan finds), so it is kept again in
    the same step; the next drained scan releases and completes again."""
    monkeypatch.setattr(daemon_module, "LIFECYCLE_RETRY", 0.0)
    answer = _throttled([COMPLETE])
    cli, at = _terminating(root, [Stats(), Stats()], 3, answer=answer, data_volume="/dev/sdf")
    assert cli.calls == [RELEASE, COMPLETE, KEEP, RELEASE, COMPLETE]
    assert at == [1, 1, 1, 2, 2]


def test_a_release_left_standing_is_undone_by_the_next_scan_that_finds_files(
    root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The complete and the keep are both throttled: the next scan moves a file, so the
    volume is kept again then, without waiting for the hook's next try (30 s)."""
    answer = _throttled([COMPLETE, KEEP])
    results = [Stats(), Stats(tally(uploaded=1))]
    with caplog.at_level(logging.INFO):
        cli, at = _terminating(root, results, 3, answer=answer, data_volume="/dev/sdf")
    assert cli.calls == [RELEASE, COMPLETE, KEEP, KEEP]
    assert at == [1, 1, 1, 2]
    assert "the hook is not completed; kept after the instance" in caplog.text


def test_a_volume_not_drained_is_never_released(root: Path) -> None:
    write(root / "b-1" / "result.png", b"still here: the volume must outlive the instance")
    cli, _ = _terminating(root, [Stats(), Stats()], 3, data_volume="/dev/sdf")
    # only ever kept (a run before this one may have released it; each try here fails)
    assert cli.calls and set(map(tuple, cli.calls)) == {tuple(KEEP)}


def test_a_volume_that_can_t_be_released_stays_and_the_hook_completes(
    root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The modify call fails (here every ec2 call does): an empty volume that costs is
    better than a drain that never ends."""
    cli, _ = _terminating(root, [Stats()], 2, data_volume="/dev/sdf")
    assert [call[:2] for call in cli.calls] == [["ec2", "modify-instance-attribute"], COMPLETE[:2]]
    assert "data volume /dev/sdf: " in caplog.text and "it stays after the instance" in caplog.text


def _note_after(root: Path, before: ImdsState, news: ImdsState) -> str:
    """Run a daemon whose metadata service says `before`, then `news`: the state directory's
    note that the instance is going, "" while there is none."""
    state_dir = StateDir(root)
    with fake_imds(before) as url:
        uploader = CountingUploader(stop_after=10_000)
        spot = SpotWatch(
            Imds(endpoint=url), LOG, uploader.set_deadline, poll_seconds=0.05, lifecycle=True
        )
        daemon = Daemon(Config(root=root, interval=0.05), uploader, LOG, Imds(endpoint=url), spot)  # type: ignore[arg-type]
        runner = threading.Thread(target=daemon.run_forever)
        runner.start()
        try:
            deadline = time.monotonic() + 10
            while uploader.scans < 3 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert not state_dir.terminating.exists()  # an old note is gone, no new one
            with fake_imds(news) as new:
                spot.imds = Imds(endpoint=new)
                while not state_dir.terminating.exists() and time.monotonic() < deadline:
                    time.sleep(0.02)
        finally:
            uploader.stop.set()
            runner.join(10)
    return state_dir.terminating.read_text() if state_dir.terminating.exists() else ""


def test_the_group_s_termination_is_noted_for_the_writers(root: Path) -> None:
    note = _note_after(root, ImdsState(), ImdsState(lifecycle_state="Terminated"))
    assert note.startswith("the Auto Scaling group is terminating this instance\n")


def test_a_spot_notice_is_noted_for_the_writers_and_an_old_note_goes_at_start(
    root: Path,
) -> None:
    StateDir(root).path.mkdir()
    StateDir(root).terminating.write_text("left by the volume's last instance\n")
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 100))
    news = ImdsState(spot_action={"action": "terminate", "time": when})
    note = _note_after(root, ImdsState(), news)
    assert note.startswith(f"spot interruption notice: terminate at {when}\n")


def test_a_rebalance_is_not_noted_as_the_end(root: Path) -> None:
    state = ImdsState(rebalance={"noticeTime": "2026-11-24T00:00:00Z"})
    with fake_imds(state) as url:
        uploader = CountingUploader(stop_after=10_000)
        spot = SpotWatch(Imds(endpoint=url), LOG, uploader.set_deadline, poll_seconds=0.05)
        daemon = Daemon(Config(root=root, interval=0.05), uploader, LOG, Imds(endpoint=url), spot)  # type: ignore[arg-type]
        runner = threading.Thread(target=daemon.run_forever)
        runner.start()
        try:
            deadline = time.monotonic() + 10
            while spot.rebalance is None and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.2)
        finally:
            uploader.stop.set()
            runner.join(10)
    assert spot.rebalance is not None
    assert not StateDir(root).terminating.exists()


def test_systemd_is_told_ready_once_the_daemon_holds_its_root(root: Path, tmp_path: Path) -> None:
    """Type=notify: READY=1 comes after the lock and the recovery, before the first scan."""
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(10)
        seen: list[bytes] = []

        class Watching(CountingUploader):
            def scan_once(self) -> Stats:
                seen.append(sock.recv(1024))  # already there at the first scan
                assert StateDir(root).lock_file.exists()
                return super().scan_once()

        daemon = _daemon(root, Watching(stop_after=1), notify_socket=str(path))
        daemon.run_forever()
    assert seen == [b"READY=1"]


def test_ready_is_sent_to_an_abstract_socket_and_never_without_one() -> None:
    name = f"awscli-uploader-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        assert notify(f"@{name}", "READY=1") is None
        assert sock.recv(64) == b"READY=1"
    assert notify(None, "READY=1") is None
    assert notify("/nonexistent/notify", "READY=1") == "No such file or directory"


def test_a_notify_socket_that_can_t_be_reached_is_one_warning(
    root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """systemd set NOTIFY_SOCKET, so it waits for READY=1: a send that fails is said once,
    and the daemon goes on scanning."""
    uploader = CountingUploader(stop_after=2)
    _daemon(root, uploader, notify_socket="/nonexistent/notify").run_forever()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "can't tell systemd READY=1 at NOTIFY_SOCKET /nonexistent/notify: No such file or directory"
    ]
    assert uploader.scans == 2


def test_a_release_left_standing_is_undone_by_a_scan_that_finds_the_volume_not_empty(
    root: Path,
) -> None:
    """As above, but what comes is a file no scan uploads (excluded): the backlog stays
    drained, the volume is not empty, so it is kept again."""
    throttled = _throttled([COMPLETE, KEEP])

    def answer(args: list[str]) -> Result:
        if args == KEEP:
            write(root / "b-1" / "partial.tmp", b"came after the release")
        return throttled(args)

    cli, at = _terminating(
        root,
        [Stats(), Stats()],
        3,
        answer=answer,
        data_volume="/dev/sdf",
        excludes=parse_excludes(["*.tmp"]),
    )
    assert cli.calls == [RELEASE, COMPLETE, KEEP, KEEP]
    assert at == [1, 1, 1, 2]
