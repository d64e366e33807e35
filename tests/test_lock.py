"""One daemon per root: the lock, and who holds it."""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

import pytest

from awscli_uploader.errors import AlreadyRunning, ConfigError
from awscli_uploader.local import lock
from awscli_uploader.local.lock import lock_holder, refuse_if_held, root_lock
from awscli_uploader.local.state import StateDir


def test_a_second_holder_is_refused_and_the_holder_is_named(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    assert lock_holder(state) is None
    with root_lock(state):
        assert lock_holder(state) == os.getpid()
        with pytest.raises(AlreadyRunning, match=f"pid {os.getpid()}"), root_lock(state):
            pass
    assert lock_holder(state) is None
    with root_lock(state):  # released: a restart gets it
        pass


def test_a_state_directory_writable_by_others_is_refused(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    state.path.mkdir(mode=0o700)
    state.path.chmod(0o777)
    with pytest.raises(ConfigError, match="writable by others"), root_lock(state):
        pass


def test_a_state_path_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    state = StateDir(tmp_path)
    os.symlink(tmp_path / "elsewhere", state.path)
    with pytest.raises(ConfigError, match="not a directory"), root_lock(state):
        pass


def test_a_start_is_refused_early_while_another_holds_the_lock(tmp_path: Path) -> None:
    """refuse_if_held, before any aws call: refuses while the lock is held, takes nothing
    (the holder keeps it), and says nothing about a root that does not exist yet."""
    state = StateDir(tmp_path)
    refuse_if_held(state)  # free: nothing to say, and nothing kept
    with root_lock(state):
        with pytest.raises(AlreadyRunning, match=f"pid {os.getpid()}"):
            refuse_if_held(state)
        assert lock_holder(state) == os.getpid()
    refuse_if_held(StateDir(tmp_path / "not-yet"))


def test_a_probe_does_not_refuse_a_daemon_taking_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A probe (`status`, a starting daemon's early check) holds a shared lock for a moment:
    root_lock waits that moment out instead of refusing."""
    monkeypatch.setattr(lock, "PROBE_WAIT", 5.0)  # room on a loaded host; the probe takes 0.2 s
    state = StateDir(tmp_path)
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)  # a probe, caught in the act
        probe_ends = threading.Timer(0.2, fcntl.flock, args=(fd, fcntl.LOCK_UN))
        probe_ends.start()
        try:
            with root_lock(state):
                assert lock_holder(state) == os.getpid()
        finally:
            probe_ends.join()
    finally:
        os.close(fd)
