"""The floor Python's environment for tests/test_py39.py: a venv of Python 3.9 holding the
package's declared dependencies (not the package: the run puts the checkout on its path).

It is kept in the user's cache (`$XDG_CACHE_HOME/awscli-uploader`, else
`~/.cache/awscli-uploader`) under a name made of the interpreter, the dependency list and the
ISO week, so a changed pyproject.toml or another 3.9 gets a venv of its own, and the newest
releases of the dependencies come in within a week (a week's build that can't reach the
index falls back to the last week's venv, with a warning); venvs built more than 14 days ago
are removed. Delete the directory to rebuild. Building costs about 8 s of CPU (pip's
resolution and the first run's byte-compiling), which the suite then pays once a week, not
at every run. .ci/run builds it with its other installs: `python3 tests/floor_env.py`.

A venv without pip (ensurepip costs ~5 s of CPU), filled by this environment's pip (`--python`,
pip 22.3 or later), with wheels only (each dependency has them: pip then skips the sdists of
botocore's thousands of releases); pytest-xdist only registers the suite's xdist_group marker.
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXTRA = ["pytest", "pytest-xdist", "boto3"]  # the tests' own needs
READY = "awscli-uploader-ready"  # written last: a half-built venv is never used
KEEP_DAYS = 14  # a venv of a past week still in use by a run that started then

# Named when the module is imported (at collection), before a test gives HOME another value
# (conftest's isolation from the user's ~/.aws does).
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")) / "awscli-uploader"
PYENV_ROOT = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")


def _version(path: str) -> tuple[int, ...]:
    found = re.search(r"/versions/(\d+(?:\.\d+)*)/", path)
    return tuple(int(part) for part in found.group(1).split(".")) if found else ()


def python39() -> str | None:
    """pyenv's newest 3.9 (its shim only runs the version pyenv is set to), else python3.9."""
    candidates = glob.glob(os.path.join(PYENV_ROOT, "versions", "3.9*", "bin", "python3.9"))
    if candidates:
        return max(candidates, key=_version)
    found = shutil.which("python3.9")
    return found if found and "/shims/" not in found else None


def dependencies(pyproject: str) -> list[str]:
    """The package's own requirements, as `[project] dependencies` lists them."""
    block = re.search(r"^dependencies = \[$(.*?)^\]$", pyproject, re.M | re.S)
    assert block is not None, "no dependencies list in pyproject.toml"
    return re.findall(r'^\s*"([^"]+)"', block.group(1), re.M)


def floor_venv(python: str, pyproject: str) -> Path:
    """The cached venv of `python` with the dependencies `pyproject` declares, built in place
    when missing or half-built, under the cache's lock (a second builder waits for the first
    and uses its venv)."""
    wanted = [*dependencies(pyproject), *EXTRA]
    week = time.strftime("%G-W%V")
    key = hashlib.sha256(
        "\n".join([os.path.realpath(python), *wanted]).encode(), usedforsecurity=False
    ).hexdigest()[:16]
    venv = CACHE / f"py39-{key}-{week}"
    if (venv / READY).is_file():
        return venv
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (venv / READY).is_file():  # built meanwhile
            return venv
        _remove_old(venv)
        shutil.rmtree(venv, ignore_errors=True)  # a build that was killed
        subprocess.run([python, "-m", "venv", "--without-pip", str(venv)], check=True)
        pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")]
        installed = subprocess.run(
            [*pip, "install", "-q", "--no-compile", "--only-binary=:all:", *wanted],
            capture_output=True,
            text=True,
            timeout=900,
        )
        if installed.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            why = installed.stdout[-2000:] + installed.stderr[-2000:]
            earlier = sorted(p for p in CACHE.glob(f"py39-{key}-*") if (p / READY).is_file())
            if not earlier:
                raise RuntimeError(why)
            print(f"floor_env: this week's venv not built, using {earlier[-1]}:", file=sys.stderr)
            print(why, file=sys.stderr)
            return earlier[-1]
        (venv / READY).write_text("\n".join(wanted) + "\n")
    return venv


def _remove_old(keep: Path) -> None:
    """The venvs of past weeks (or past dependency lists) built more than KEEP_DAYS ago."""
    cutoff = time.time() - KEEP_DAYS * 86400
    for old in CACHE.glob("py39-*"):
        if old != keep and old.stat().st_mtime < cutoff:
            shutil.rmtree(old, ignore_errors=True)


def main() -> int:
    python = python39()
    if python is None:
        print("floor_env: no Python 3.9 (python3.9 on PATH, or pyenv's)", file=sys.stderr)
        return 1
    print(floor_venv(python, (REPO / "pyproject.toml").read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
