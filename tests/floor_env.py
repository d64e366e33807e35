"""The floor Python's environment for tests/test_py39.py: a venv of Python 3.9 holding the
package's declared dependencies (not the package: the run puts the checkout on its path).

It is built once and kept in the user's cache, under a name made of the interpreter and the
dependency list, so a changed pyproject.toml or another 3.9 gets a venv of its own; delete
`~/.cache/awscli-uploader/` to rebuild. Building costs about 8 s of CPU (pip's resolution and
the first run's byte-compiling), which the suite then no longer pays at every run. .ci/run
builds it with its other installs: `python3 tests/floor_env.py`.

A venv without pip (ensurepip costs ~5 s of CPU), filled by this environment's pip (`--python`,
pip 22.3 or later), with wheels only (each dependency has them: pip then skips the sdists of
botocore's thousands of releases); pytest-xdist only registers the suite's xdist_group marker.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXTRA = ["pytest", "pytest-xdist", "boto3"]  # the tests' own needs
READY = "awscli-uploader-ready"  # written last: a half-built venv is never used


def python39() -> str | None:
    """pyenv's 3.9 (its shim only runs the version pyenv is set to), else python3.9."""
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates = sorted(glob.glob(os.path.join(root, "versions", "3.9*", "bin", "python3.9")))
    if candidates:
        return candidates[-1]
    found = shutil.which("python3.9")
    return found if found and "/shims/" not in found else None


def dependencies(pyproject: str) -> list[str]:
    """The package's own requirements, as `[project] dependencies` lists them."""
    block = re.search(r"^dependencies = \[$(.*?)^\]$", pyproject, re.M | re.S)
    assert block is not None, "no dependencies list in pyproject.toml"
    return re.findall(r'^\s*"([^"]+)"', block.group(1), re.M)


# Named when the module is imported (at collection), before a test gives HOME another value
# (conftest's isolation from the user's ~/.aws does).
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")) / "awscli-uploader"


def floor_venv(python: str, pyproject: str) -> Path:
    """The cached venv of `python` with the dependencies `pyproject` declares; built when
    missing, in a directory of its own, then renamed into place (another run building it
    meanwhile keeps its own, and this one's is removed)."""
    wanted = [*dependencies(pyproject), *EXTRA]
    key = hashlib.sha256(
        "\n".join([os.path.realpath(python), *wanted]).encode(), usedforsecurity=False
    ).hexdigest()[:16]
    venv = CACHE / f"py39-{key}"
    if (venv / READY).is_file():
        return venv
    venv.parent.mkdir(parents=True, exist_ok=True)
    building = venv.with_name(f".{venv.name}.{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    try:
        subprocess.run([python, "-m", "venv", "--without-pip", str(building)], check=True)
        pip = [sys.executable, "-m", "pip", "--python", str(building / "bin" / "python")]
        installed = subprocess.run(
            [*pip, "install", "-q", "--no-compile", "--only-binary=:all:", *wanted],
            capture_output=True,
            text=True,
            timeout=900,
        )
        if installed.returncode != 0:
            raise RuntimeError(installed.stdout[-2000:] + installed.stderr[-2000:])
        (building / READY).write_text("\n".join(wanted) + "\n")
        try:
            building.rename(venv)
        except OSError:  # built meanwhile by another run (or a half-built one is in the way)
            if not (venv / READY).is_file():
                shutil.rmtree(venv, ignore_errors=True)
                building.rename(venv)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return venv


def main() -> int:
    python = python39()
    if python is None:
        print("floor_env: no Python 3.9 (python3.9 on PATH, or pyenv's)", file=sys.stderr)
        return 1
    print(floor_venv(python, (REPO / "pyproject.toml").read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
