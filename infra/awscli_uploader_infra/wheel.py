"""Builds the awscli-uploader wheel that the stack ships as a CDK asset."""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT_SECONDS = 600
# Fixed zip timestamps: the same sources give the same wheel, so the same asset hash, so
# a redeploy without changes leaves the launch template (and the instance) alone.
SOURCE_DATE_EPOCH = "315532800"
_NOT_SOURCES = shutil.ignore_patterns(
    ".git",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".*cache",
    "cdk.out",
    ".venv",
    "venv",
    "node_modules",
    "output",
    ".run",
)


class WheelBuildError(RuntimeError):
    """The wheel could not be built; carries the command, exit code and output."""

    def __init__(self, command: list[str], returncode: int | None, output: str) -> None:
        self.command = command
        self.returncode = returncode
        self.output = output
        super().__init__(
            f"building the awscli-uploader wheel failed (exit {returncode}): "
            f"{' '.join(command)}\n{output.strip()}"
        )


@functools.cache
def build_wheel(project_dir: Path = REPO_ROOT) -> Path:
    """Builds the project's wheel once per process, reproducibly, in a temporary directory.

    It builds from a copy of the sources, so a stale build/ in the checkout can't
    slip removed modules into the wheel and the checkout stays untouched. The
    directory is removed when the process exits: by then the CDK asset staging
    has copied the wheel into the cloud assembly.
    """
    if not (project_dir / "pyproject.toml").is_file():
        raise WheelBuildError([], None, f"no pyproject.toml in {project_dir}")
    work_dir = Path(tempfile.mkdtemp(prefix="awscli-uploader-wheel-"))
    atexit.register(shutil.rmtree, work_dir, ignore_errors=True)
    source_dir = work_dir / "src"
    out_dir = work_dir / "dist"
    shutil.copytree(project_dir, source_dir, ignore=_NOT_SOURCES, symlinks=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--disable-pip-version-check",
        "--quiet",
        "-w",
        str(out_dir),
        str(source_dir),
    ]
    env = {**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH}
    try:
        result = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_SECONDS,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise WheelBuildError(command, None, f"timed out after {error.timeout} s") from error
    if result.returncode != 0:
        raise WheelBuildError(command, result.returncode, result.stderr + result.stdout)
    wheels = sorted(out_dir.glob("awscli_uploader-*.whl"))
    if len(wheels) != 1:
        raise WheelBuildError(command, 0, f"expected one wheel in {out_dir}, found {wheels}")
    return wheels[0]


def resolve_wheel(wheel_path: str | None) -> Path:
    """The prebuilt wheel when one is given, else a freshly built one."""
    if wheel_path is None:
        return build_wheel()
    path = Path(wheel_path)
    if not path.is_file() or path.suffix != ".whl":
        raise FileNotFoundError(f"wheel_path {wheel_path!r} is not a .whl file")
    return path
