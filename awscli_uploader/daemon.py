"""The daemon loop: the root's lock, a scan every interval, clean stop on signals.

On EC2 a SpotWatch thread polls the spot interruption notice and the rebalance
recommendation, during scans too; either one ends the sleep and makes the loop
scan back to back, so finished files leave before the instance.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType

from .config import Config
from .ec2.imds import Imds
from .ec2.spot import SpotWatch
from .errors import AwsCliError, ConfigError
from .local.filters import bucket_for
from .local.lock import root_lock
from .local.state import StateDir
from .local.volume import left_on_volume
from .names import display
from .ops.backlog import backlog
from .ops.notify import notify
from .s3.awscli import AwsCli
from .scan.record import Stats
from .scan.uploader import Uploader

DRAIN_PAUSE_SECONDS = 1.0  # between scans once a spot drain is on
WAKE_SECONDS = 0.5  # how often a sleep looks at the spot watch
ROOT_POLL_SECONDS = 5.0
LIFECYCLE_RETRY = 30.0  # seconds between attempts of a failed lifecycle call
HEARTBEAT_EVERY = 600.0  # a drain that moves files extends the hook's wait this often


def drained(stats: Stats, waiting: int) -> bool:
    """Whether the drain is done: the scan failed nothing and moved nothing (one that moved
    something may find more), and no file is left under the root (`waiting`, counted as
    `status` and the metrics count them: excluded files aside). Enough to complete the hook,
    not to let the data volume go: that needs it empty (local/volume.py)."""
    return stats.failed == 0 and stats.uploaded == 0 and stats.present == 0 and waiting == 0


Volume = Callable[[StateDir], "str | None"]
MAYBE = "?"  # a data volume a run before this one may have released: kept at the first chance


@dataclass
class DrainHook:
    """An Auto Scaling termination hook that waits on this instance's drain: completed once
    a scan (that began after the news, and was not stopped) finds nothing left; extended
    now and then while the drain moves files. With a data volume, the volume is set to go
    with the instance in the same step, and only when nothing at all is left on it."""

    config: Config
    imds: Imds
    log: logging.Logger
    volume: Volume = left_on_volume  # why the data volume may not go yet, or None
    completed: bool = False
    # the instance whose data volume goes with it while the hook is not completed; MAYBE at
    # start: a run before this one (killed between the two calls) may have released it
    released: str | None = None
    _next_try: float = 0.0  # after a failed lifecycle call, not before (time.monotonic())
    _heartbeat: float = field(default_factory=time.monotonic)  # the wait was last extended

    def after_scan(self, stats: Stats, cli: AwsCli) -> None:
        hook, group = self.config.lifecycle_hook, self.config.autoscaling_group
        now = time.monotonic()
        if self.completed or hook is None or group is None:
            return
        waiting = sum(entry.files for entry in backlog(self.config, now_ns=time.time_ns()))
        done = drained(stats, waiting)
        # what is on the volume, walked once a scan and only when the drain is done
        left = self.volume(self.config.state) if done and self.config.data_volume else None
        if self.released is not None and (not done or left is not None):
            standing = self.imds.instance_id() if self.released == MAYBE else self.released
            if standing is not None:  # now, whatever _next_try
                self._keep_volume(self._own_region(cli), standing)
        if now < self._next_try:
            return
        instance = self.imds.instance_id()
        if instance is None:
            self.log.error("no instance id from the metadata service; the hook waits")
            self._next_try = now + LIFECYCLE_RETRY
            return
        cli = self._own_region(cli)
        try:
            if not done:
                if stats.uploaded + stats.present and now - self._heartbeat >= HEARTBEAT_EVERY:
                    cli.record_lifecycle_action_heartbeat(hook, group, instance)
                    self._heartbeat = now
                return
            if not self._complete(cli, hook, group, instance, left):
                self._next_try = now + LIFECYCLE_RETRY
                return
        except AwsCliError as exc:
            self.log.error("lifecycle hook %s: %s; trying again in %gs", hook, exc, LIFECYCLE_RETRY)
            self._next_try = now + LIFECYCLE_RETRY
            return
        self.completed = True
        self.log.info("the backlog is drained: lifecycle hook %s of %s completed", hook, group)

    def _own_region(self, cli: AwsCli) -> AwsCli:
        """Auto Scaling's and EC2's own endpoints, in the instance's region (not the
        buckets')."""
        region = self.imds.region() or self.config.region
        return dataclasses.replace(cli, region=region, endpoint_url=None)

    def _complete(
        self, cli: AwsCli, hook: str, group: str, instance: str, left: str | None
    ) -> bool:
        """Release the data volume (when nothing is left on it) and complete the hook, as one
        step: when the complete fails, the volume is kept again at once, since the hook's
        timeout would otherwise delete it with whatever a later scan finds on it. Not
        completed (False) while an earlier release stands that can't be undone now."""
        if left is not None and self.released is not None:  # files, and a release stands
            return False  # that after_scan could not undo just now
        released = self._release_volume(cli, instance, left)
        try:
            cli.complete_lifecycle_action(hook, group, instance)
        except AwsCliError:
            if released:
                self._keep_volume(cli, instance)
            raise
        return True

    def _release_volume(self, cli: AwsCli, instance: str, left: str | None) -> bool:
        """Set the data volume to be deleted with the instance when nothing at all is left on
        it (not only the backlog: excluded files, files directly under the root, the trash).
        When it is not empty, or can't be set, it stays: it costs, loses nothing, and the
        hook is completed anyway. Whether it was set."""
        device = self.config.data_volume
        if device is None:
            return False
        if left is not None:  # what the one walk before found on it
            self.log.warning("data volume %s: kept after the instance, not empty: %s", device, left)
            return False
        try:
            cli.set_delete_on_termination(instance, device, delete=True)
        except AwsCliError as exc:
            self.log.error("data volume %s: %s; it stays after the instance, empty", device, exc)
            return False
        self.released = instance
        self.log.info("data volume %s: empty, set to be deleted with the instance", device)
        return True

    def _keep_volume(self, cli: AwsCli, instance: str) -> None:
        """Undo a release whose hook was not completed (files may come yet); when that
        fails, the next scan that does not find the volume empty tries again."""
        device = self.config.data_volume
        if device is None:
            return
        try:
            cli.set_delete_on_termination(instance, device, delete=False)
        except AwsCliError as exc:
            self.log.error(
                "data volume %s: %s; still set to be deleted with the instance, until a "
                "later scan sets it back",
                device,
                exc,
            )
            return
        self.released = None
        self.log.info("data volume %s: the hook is not completed; kept after the instance", device)


@dataclass
class Daemon:
    config: Config
    uploader: Uploader
    log: logging.Logger
    imds: Imds | None = None  # set on EC2: spot notices and rebalances are polled
    spot: SpotWatch | None = None
    volume: Volume = left_on_volume  # the drain hook's: may the data volume go?

    def __post_init__(self) -> None:
        self._signals = 0
        self.hook: DrainHook | None = None
        if self.imds is not None and self.config.lifecycle_hook is not None:
            maybe = MAYBE if self.config.data_volume else None
            self.hook = DrainHook(self.config, self.imds, self.log, self.volume, released=maybe)
        self._timers: list[threading.Timer] = []
        if self.imds is not None and self.spot is None:
            self.spot = SpotWatch(
                self.imds,
                self.log,
                self.uploader.set_deadline,
                on_notice=self._cancel_at,
                lifecycle=self.config.lifecycle_hook is not None,
            )
        if self.spot is not None and self.spot.on_ending is None:
            self.spot.on_ending = self._ending

    @property
    def stop(self) -> threading.Event:
        """The event that stops the loop and the scan: the uploader's own."""
        return self.uploader.stop

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT: no new upload starts; those under way may finish within the stop
        grace, then they are cancelled cleanly (their files stay) and the run exits 0. A
        second signal cancels them at once; a third ends the process."""

        def handler(signum: int, frame: FrameType | None) -> None:
            name = signal.Signals(signum).name
            self._signals += 1
            if self._signals > 2:
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)
                return
            if self._signals == 2:  # not here: the handler may interrupt a lock's holder
                self._later(0.0, f"{name} received again")
                return
            grace = self.config.stop_grace
            self.log.info("%s received: stopping; uploads under way get %gs to finish", name, grace)
            self.stop.set()
            timer = threading.Timer(
                grace, self._cancel, args=(f"not done {grace:g}s after {name}",)
            )
            timer.daemon = True
            timer.start()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def _after_scan(self, stats: Stats, began: float) -> None:
        """Only a scan that began after the group's news, and was not stopped (a stopped
        scan proves nothing), may tell the drain hook."""
        since = self.spot.terminating_since if self.spot is not None else None
        if self.hook is None or since is None or began < since or self.stop.is_set():
            return
        self.hook.after_scan(stats, self.uploader.cli)

    def _ending(self, reason: str) -> None:
        """The instance is going: say so in the state directory, where the writers (the
        coordinator's unit, in infra/) learn to stop adding files that can't leave."""
        if not self.config.state.note_terminating(reason):
            self.log.error("can't note %s in %s", reason, self.config.state.terminating)

    def _cancel_at(self, deadline: float) -> None:
        """A spot interruption is due: what is still uploading at its deadline (less the
        margin kept for the last verification) is cancelled cleanly, not cut off."""
        self._later(max(0.0, deadline - time.monotonic()), "the interruption is due")

    def _later(self, seconds: float, reason: str) -> None:
        """Cancel the uploads under way in `seconds`, from a thread of its own; a run that
        ends first cancels the timer."""
        timer = threading.Timer(seconds, self._cancel, args=(reason,))
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    def _cancel(self, reason: str) -> None:
        """Cancel the uploads under way, cleanly: their files stay for the next run."""
        if self.uploader.cli.cancel_running(f"cancelled: {reason}"):
            self.log.info("cancelling the uploads under way (%s); their files stay", reason)

    def run_once(self) -> Stats:
        try:
            with root_lock(self.config.state) as problem:
                self._recover(problem)
                return self.uploader.scan_once()
        finally:
            self._end_timers()

    def _end_timers(self) -> None:
        for timer in self._timers:
            timer.cancel()

    def run_forever(self) -> None:
        if not self._wait_for_root():
            return
        with root_lock(self.config.state) as problem:
            self._recover(problem)
            self.config.state.clear_terminating()
            self.log.info(
                "watching %s every %gs (stability %gs)",
                self.config.root,
                self.config.interval,
                self.config.stability,
            )
            self._ready()
            if self.spot is not None:
                self.spot.start()
            try:
                while not self.stop.is_set():
                    if self.config.root.is_dir():
                        began = time.monotonic()
                        self._after_scan(self.uploader.scan_once(), began)
                    else:
                        self.log.warning("root %s is gone; waiting for it", self.config.root)
                    draining = self.spot is not None and self.spot.draining
                    self._sleep(DRAIN_PAUSE_SECONDS if draining else self.config.interval)
            finally:
                self._end_timers()
                if self.spot is not None:
                    self.spot.close()
        self.log.info("stopped")

    def _ready(self) -> None:
        """Tell systemd the daemon is up (Type=notify); a socket that can't be reached gets
        one WARNING, since such a unit's start then fails at its TimeoutStartSec."""
        socket_path = self.config.notify_socket
        problem = notify(socket_path, "READY=1")
        if socket_path is not None and problem is not None:
            self.log.warning(
                "can't tell systemd READY=1 at NOTIFY_SOCKET %s: %s", display(socket_path), problem
            )

    def _recover(self, problem: str | None) -> None:
        """Undo what a killed run left: staging links, and files renamed into the trash."""
        if problem is not None:
            self.log.warning(
                "%s; going on without it: files are uploaded from where they are, unpinned, "
                "and the status is not recorded",
                problem,
            )
            return
        state = self.config.state
        self.uploader.suspect(state.clean_staging())
        state.clean_old_layers()
        restored, problems = state.trash.restore()
        for why in problems:
            self.log.error("%s", display(why))
        for path in restored:
            self.log.warning("%s: restored from an interrupted delete", display(path))
            try:
                directory, *key = path.relative_to(self.config.root).parts
            except ValueError:  # still in the trash: 1,000 names taken
                continue
            bucket, _ = bucket_for(directory, self.config.bucket_map)
            self.uploader.suspect([(bucket, "/".join(key))])
        left = state.left_uploads()  # the first scan aborts what they left in S3
        self.uploader.leftovers.add(left)
        self.uploader.suspect((entry.bucket, key) for entry in left for key in entry.keys)

    def _wait_for_root(self) -> bool:
        warned = False
        while not self.config.root.is_dir():
            if self.config.root.exists():
                raise ConfigError(f"root {self.config.root} is not a directory")
            if not warned:
                self.log.warning("root %s does not exist yet; waiting for it", self.config.root)
                warned = True
            if self.stop.wait(ROOT_POLL_SECONDS):
                return False
        return True

    def _sleep(self, seconds: float) -> None:
        """Sleep until the next scan, the stop signal, or the start of a spot drain."""
        deadline = time.monotonic() + seconds
        watch = self.spot if self.spot is not None and not self.spot.draining else None
        while not self.stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0 or (watch is not None and watch.draining):
                return
            self.stop.wait(left if watch is None else min(left, WAKE_SECONDS))
