"""Python 3.9, the floor `requires-python` declares (and Amazon Linux 2023's python3):
the decision tests and a real drain through the AWS CLI run on it, in a venv of their own.

mypy can't target 3.9 (its oldest target is 3.10), so this run is what keeps 3.10-only
calls (`zip(strict=True)`, `match`, `int.bit_count`) out of the package."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import IN_CI, REPO

DECISIONS = [
    "tests/test_proof.py",
    "tests/test_scanner.py",
    "tests/test_filters.py",
    "tests/test_names.py",
    "tests/test_check.py",
    "tests/test_record.py",
    "tests/test_config.py",
    "tests/test_settle.py",
    "tests/test_s3settings.py",
    "tests/test_walk.py",
    "tests/test_watchdog.py",
    "tests/test_uploader.py::test_uploads_verifies_and_deletes",  # a real drain
]


def _python39() -> str | None:
    """pyenv's 3.9 (its shim only runs the version pyenv is set to), else python3.9."""
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates = sorted(glob.glob(os.path.join(root, "versions", "3.9*", "bin", "python3.9")))
    if candidates:
        return candidates[-1]
    found = shutil.which("python3.9")
    return found if found and "/shims/" not in found else None


@pytest.mark.slow
def test_the_floor_python_runs_the_decisions_and_a_real_drain(tmp_path: Path) -> None:
    python = _python39()
    if python is None:
        message = "no Python 3.9 (python3.9 on PATH, or pyenv's)"
        if IN_CI:
            pytest.fail(message + ": CI must run the declared floor")
        pytest.skip(message)
    venv = tmp_path / "py39"
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    version = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sys; print(sys.version_info[:2])"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert version.stdout.strip() == "(3, 9)", version.stdout
    # The package and the test runner alone, without byte-compiling what it installs (most of
    # pip's time): the moto server and AWS CLI v1 are programs the tests start, not code under
    # test, so they come from this environment (helpers.TOOLS_PYTHON).
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-compile"]
    deps = ["pytest", "pytest-xdist", "pytest-subprocess", "boto3"]
    installed = subprocess.run(
        [*pip, "-e", str(REPO), *deps], capture_output=True, text=True, timeout=900
    )
    assert installed.returncode == 0, installed.stdout[-2000:] + installed.stderr[-2000:]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["AWSCLI_UPLOADER_TOOLS_PYTHON"] = sys.executable
    ran = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "-m", "not slow", "-n", "2", *DECISIONS],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=1500,
    )  # fmt: skip
    print(ran.stdout[-1500:])
    assert ran.returncode == 0, ran.stdout[-4000:] + ran.stderr[-2000:]
