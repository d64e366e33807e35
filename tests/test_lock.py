"""One daemon per root: the lock, and who holds it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from awscli_uploader.errors import AlreadyRunning, ConfigError
from awscli_uploader.local.lock import lock_holder, root_lock
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
