"""Production writers: a file some process holds open for writing is never deleted.

Real writer processes; the daemon's read lease (lease.py) is what sees them.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import OLD, REPO, Moto, make_uploader, tree, write

from awscli_uploader.local import lease
from awscli_uploader.local.lease import Guard, broken
from awscli_uploader.local.state import StateDir, rename_noreplace
from awscli_uploader.model import Identity
from awscli_uploader.scan import settle
from awscli_uploader.scan.settle import delete_if_unchanged

WRITER = """
import os, sys
path = sys.argv[1]
with open(path, "ab") as handle:
    for line in sys.stdin:
        if line.strip() == "close":
            break
        handle.write(line.encode()); handle.flush()
        os.utime(path, (float(sys.argv[2]), float(sys.argv[2])))  # looks old: mtime can't tell
        print("wrote", flush=True)
"""


class Writer:
    """A process that opens a file once, appends a line per command, and pauses between."""

    def __init__(self, path: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), str(OLD)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def append(self, text: str) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "wrote"

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("close\n")
        self.proc.stdin.flush()
        assert self.proc.wait(10) == 0


@pytest.fixture
def writer_for() -> Iterator[type[Writer]]:
    made: list[Writer] = []

    class Tracked(Writer):
        def __init__(self, path: Path) -> None:
            super().__init__(path)
            made.append(self)

    yield Tracked
    for writer in made:
        writer.proc.kill()
        writer.proc.wait()


def test_a_paused_writer_keeps_its_file_until_it_closes(
    root: Path, moto: Moto, one_cli: str, writer_for: type[Writer], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    moto.create_bucket("logs-bucket")
    path = root / "logs-bucket" / "run.log"
    path.parent.mkdir(parents=True)
    writer = writer_for(path)
    writer.append("first line")
    uploader = make_uploader(root, moto, one_cli)
    for _ in range(2):  # paused, mtime old: still its writer's
        stats = uploader.scan_once()
        assert (stats.unstable, stats.uploaded) == (1, 0)
        assert tree(root) == ["logs-bucket/run.log"]
    assert moto.keys("logs-bucket") == []
    opened = [r for r in caplog.records if "open for writing" in r.getMessage()]
    assert [r.levelno for r in opened] == [logging.WARNING, logging.DEBUG]  # logged once
    writer.append("second line")
    writer.close()
    stats = uploader.scan_once()
    assert stats.uploaded == 1
    assert moto.get("logs-bucket", "run.log") == b"first line\nsecond line\n"
    assert tree(root) == []


def test_a_writer_that_opens_after_the_hash_keeps_the_file(
    root: Path, moto: Moto, one_cli: str, writer_for: type[Writer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer opens the file between the proof and the unlink: S3 has the bytes,
    but the file stays until the writer is done, and nothing it writes is lost."""
    moto.create_bucket("logs-bucket")
    path = write(root / "logs-bucket" / "stage.dat", b"stage one\n")
    writers: list[Writer] = []
    real = settle.delete_if_unchanged

    def writer_arrives(*args: object, **kwargs: object) -> str | None:
        if not writers:
            writers.append(writer_for(path))
            writers[0].append("stage two")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    with monkeypatch.context() as patch:
        patch.setattr(settle, "delete_if_unchanged", writer_arrives)
        stats = make_uploader(root, moto, one_cli).scan_once()
    assert stats.uploaded == 0
    assert path.read_bytes() == b"stage one\nstage two\n"
    writers[0].close()
    stats = make_uploader(root, moto, one_cli).scan_once()
    assert stats.uploaded == 1
    assert moto.get("logs-bucket", "stage.dat") == b"stage one\nstage two\n"
    assert tree(root) == []


@pytest.mark.slow
def test_an_open_writer_refuses_the_delete(tmp_path: Path, writer_for: type[Writer]) -> None:
    path = tmp_path / "f.log"
    writer = writer_for(path)
    writer.append("x")
    identity = Identity.of(os.lstat(path))
    assert lease.writer_state(path) is Guard.WRITER
    trash = StateDir(tmp_path).trash
    assert "open for writing" in (delete_if_unchanged(path, identity, trash) or "")
    assert path.exists()
    writer.close()
    assert lease.writer_state(path) is Guard.HELD
    assert delete_if_unchanged(path, Identity.of(os.lstat(path)), trash) is None
    assert not path.exists()


def test_a_replacement_renamed_in_at_the_last_moment_is_kept(tmp_path: Path) -> None:
    root = tmp_path / "root"
    trash = StateDir(root).trash
    path = write(root / "b" / "result.json", b"verified")
    identity = Identity.of(os.lstat(path))
    replaced: list[Path] = []

    def replaced_first(src: Path, dst: Path) -> None:
        if src == path and not replaced:  # just before the delete's own rename
            replaced.append(write(root / "b" / ".result.json.tmp", b"newer result"))
            os.replace(replaced[0], path)
        rename_noreplace(src, dst)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(settle, "rename_noreplace", replaced_first)
        refusal = delete_if_unchanged(path, identity, trash)
    assert refusal is not None and "replaced just before the delete" in refusal
    assert path.read_bytes() == b"newer result"
    assert list(trash.dir.rglob("*.json")) == []


def test_put_back_never_clobbers_what_appeared_meanwhile(tmp_path: Path) -> None:
    root = tmp_path / "root"
    trash = StateDir(root).trash
    moved = write(trash.place(root / "b" / "r.txt"), b"moved away")
    write(root / "b" / "r.txt", b"appeared meanwhile")
    (kept,), problems = trash.restore()
    assert problems == []
    assert (root / "b" / "r.txt").read_bytes() == b"appeared meanwhile"
    assert kept.read_bytes() == b"moved away" and kept.name.startswith("r.txt.")
    assert not moved.exists()


SYSTEM_PYTHON = Path("/usr/bin/python3")  # the test runner's may sit under /root
NOBODY = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")


@pytest.mark.slow
@pytest.mark.skipif(not SYSTEM_PYTHON.exists() or os.geteuid() != 0, reason="needs root")
def test_without_cap_lease_another_users_file_has_no_lease() -> None:
    """As an unprivileged user: a lease on its own file works; on another owner's it
    can't be had, and the guard says so instead of claiming the file is free."""
    with tempfile.TemporaryDirectory(dir="/tmp") as name:
        _as_nobody(Path(name))


def _as_nobody(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    theirs = write(tmp_path / "theirs.txt", b"root's")
    theirs.chmod(0o644)
    mine = tmp_path / "mine"
    mine.mkdir()
    os.chown(mine, 65534, 65534)
    code = (
        "import sys; from pathlib import Path; from awscli_uploader.local import lease; "
        "own = Path(sys.argv[2]) / 'own.txt'; own.write_text('x'); "
        "print(lease.writer_state(Path(sys.argv[1])).value, lease.writer_state(own).value, "
        "lease.describe().startswith('read leases only'))"
    )
    out = subprocess.run(
        [*NOBODY, str(SYSTEM_PYTHON), "-c", code, str(theirs), str(mine)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO), "PATH": os.environ["PATH"]},
        timeout=30,
    )
    assert out.stdout.split() == ["unavailable", "held", "True"], out.stderr


@pytest.mark.slow
def test_a_writer_caught_after_the_rename_into_the_trash_gets_its_file_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer opens the file by its name just before the rename: its open waits on the
    lease with the inode in hand. The check after the rename sees the broken lease and puts
    the file back, so the writer's bytes land in the file at its path, not in an unlinked
    inode."""
    root = tmp_path / "root"
    trash = StateDir(root).trash
    path = write(root / "b" / "late.log", b"verified\n")
    identity = Identity.of(os.lstat(path))
    real_broken = broken
    late: list[subprocess.Popen[bytes]] = []

    def writer_opens_now(fd: int) -> bool:
        if not late:
            code = "import sys; f = open(sys.argv[1], 'ab'); f.write(b'late\\n'); f.close()"
            late.append(subprocess.Popen([sys.executable, "-c", code, str(path)]))
            deadline = time.monotonic() + 20
            while not real_broken(fd):  # its open now waits on the lease
                assert time.monotonic() < deadline, "the writer never opened"
                time.sleep(0.01)
            return False  # the check before the rename just missed it
        return real_broken(fd)

    monkeypatch.setattr(settle, "broken", writer_opens_now)
    try:
        refusal = delete_if_unchanged(path, identity, trash)
        assert late[0].wait(30) == 0
    finally:
        for proc in late:
            proc.kill()
    assert refusal is not None and "open for writing" in refusal
    assert path.read_bytes() == b"verified\nlate\n"
    assert list(trash.dir.rglob("*.log")) == []
