"""Builds the awscli-uploader wheel that the stack ships as a CDK asset."""

from __future__ import annotations

import atexit
import functools
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT_SECONDS = 600


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
    """Builds the project's wheel once per process into a temporary directory.

    The directory is removed when the process exits: by then the CDK asset
    staging has copied the wheel into the cloud assembly.
    """
    if not (project_dir / "pyproject.toml").is_file():
        raise WheelBuildError([], None, f"no pyproject.toml in {project_dir}")
    out_dir = Path(tempfile.mkdtemp(prefix="awscli-uploader-wheel-"))
    atexit.register(shutil.rmtree, out_dir, ignore_errors=True)
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
        str(project_dir),
    ]
    try:
        result = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_SECONDS,
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
