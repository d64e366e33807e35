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
# The asset is built from the package's code alone, by a pinned build backend, so only a
# change to the code (or to these pins) changes its hash, the launch template, and so the
# instance. The README, the package's long description, is replaced by a fixed line.
BUILD_CONSTRAINTS = Path(__file__).resolve().parent.parent / "build-constraints.txt"
PACKAGE = "awscli_uploader"
FIXED_README = "awscli-uploader: moves finished files into S3 with the AWS CLI.\n"
_NOT_SOURCES = shutil.ignore_patterns("__pycache__", "*.pyc")


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

    It builds from a copy of pyproject.toml and the package alone (the README
    replaced by a fixed line), with the build backend pinned by
    infra/build-constraints.txt, so a stale build/ can't slip removed modules in,
    and a README edit or a new setuptools can't change the asset. The directory
    is removed when the process exits: by then the CDK asset staging has copied
    the wheel into the cloud assembly.
    """
    if not (project_dir / "pyproject.toml").is_file():
        raise WheelBuildError([], None, f"no pyproject.toml in {project_dir}")
    work_dir = Path(tempfile.mkdtemp(prefix="awscli-uploader-wheel-"))
    atexit.register(shutil.rmtree, work_dir, ignore_errors=True)
    source_dir = work_dir / "src"
    out_dir = work_dir / "dist"
    source_dir.mkdir()
    shutil.copy2(project_dir / "pyproject.toml", source_dir / "pyproject.toml")
    if (project_dir / PACKAGE).is_dir():
        shutil.copytree(project_dir / PACKAGE, source_dir / PACKAGE, ignore=_NOT_SOURCES)
    (source_dir / "README.md").write_text(FIXED_README, encoding="utf-8")
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
    env = {
        **os.environ,
        "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH,
        "PIP_CONSTRAINT": str(BUILD_CONSTRAINTS),  # also binds the isolated build env
    }
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


if __name__ == "__main__":
    # python3 infra/awscli_uploader_infra/wheel.py DIR: the same wheel the Python stack ships
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "dist")
    target.mkdir(parents=True, exist_ok=True)
    print(shutil.copy2(build_wheel(), target))
