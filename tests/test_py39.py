"""Python 3.9, the floor `requires-python` declares (and Amazon Linux 2023's python3):
the decision tests and a real drain through the AWS CLI run on it, in a venv of their own.

mypy can't target 3.9 (its oldest target is 3.10): vermin, in scripts/check.sh, keeps
3.10-only syntax and calls (`match`, `zip(strict=True)`, `itertools.pairwise`) out of every
line of the package, and this run catches what it does not see (`bit_count` on a variable,
an `X | Y` evaluated at run time, a library such as click that behaves otherwise on 3.9)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from floor_env import floor_venv, python39
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
    "tests/test_uploader.py",
]
# Of these modules: the tests that need no server or aws process, and those marked `floor`:
# the real drain, and one run of the entry point (`main`, through start-up to an upload).
# The rest drive the seam against moto at two or more aws processes each, and run on the
# current Python; vermin checks their lines of the package on 3.9 as it does all.
SELECTED = "not slow and (not servers or floor)"


@pytest.mark.slow
def test_the_floor_python_runs_the_decisions_and_a_real_drain(tmp_path: Path) -> None:
    python = python39()
    if python is None:
        message = "no Python 3.9 (python3.9 on PATH, or pyenv's)"
        if IN_CI:
            pytest.fail(message + ": CI must run the declared floor")
        pytest.skip(message)
    pyproject = (REPO / "pyproject.toml").read_text()
    assert re.search(r'^requires-python = ">=3\.9"$', pyproject, re.M), "the floor moved: 3.9?"
    # The package's declared dependencies, in a venv kept between runs (tests/floor_env.py);
    # the package is this checkout, on the path. The moto server and AWS CLI v1 are programs
    # the tests start, not code under test, so they come from this environment
    # (helpers.TOOLS_PYTHON).
    venv = floor_venv(python, pyproject)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(REPO)  # the 3.11 tools it starts (moto, aws v1) see it too: unused
    where = "import sys, awscli_uploader as p; print(sys.version_info[:2]); print(p.__file__)"
    asked = subprocess.run(
        [str(venv / "bin" / "python"), "-c", where],
        capture_output=True, text=True, check=True, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert asked.stdout.splitlines() == ["(3, 9)", str(REPO / "awscli_uploader" / "__init__.py")]
    env["AWSCLI_UPLOADER_TOOLS_PYTHON"] = sys.executable
    # One process: two xdist workers would each start, import and collect it all again (about
    # 10 s of CPU more), and the run is no shorter on 2 busy cores.
    ran = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider",
         "-m", SELECTED, *DECISIONS],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=1500,
    )  # fmt: skip
    print(ran.stdout[-1500:])
    assert ran.returncode == 0, ran.stdout[-4000:] + ran.stderr[-2000:]
    for floor in (  # ran, not skipped (-rA lists each test's outcome)
        "tests/test_uploader.py::test_uploads_verifies_and_deletes[v1]",
        "tests/test_filters.py::test_directory_named_like_a_mapping_target_is_refused",
    ):
        assert f"PASSED {floor}" in ran.stdout, floor
