"""Builds the directory of wheels that the stack ships as a CDK asset.

The asset holds the package's own wheel and pinned wheels of its runtime
dependencies (infra/runtime-requirements.txt): the instance installs them with
`pip install --no-index`, so nothing unpinned is fetched at boot.
"""

from __future__ import annotations

import atexit
import fnmatch
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
# The daemon's dependencies, each pinned to one wheel by its hash: the same files at every
# synth, so they don't move the asset hash either.
RUNTIME_REQUIREMENTS = Path(__file__).resolve().parent.parent / "runtime-requirements.txt"
PACKAGE = "awscli_uploader"
FIXED_README = "awscli-uploader: moves finished files into S3 with the AWS CLI.\n"
_NOT_SOURCES = shutil.ignore_patterns("__pycache__", "*.pyc")


class WheelBuildError(RuntimeError):
    """The wheels could not be made; carries the command, exit code and output."""

    def __init__(self, command: list[str], returncode: int | None, output: str) -> None:
        self.command = command
        self.returncode = returncode
        self.output = output
        super().__init__(
            f"making the awscli-uploader wheels failed (exit {returncode}): "
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
    _run_pip(command, env)
    wheels = sorted(out_dir.glob("awscli_uploader-*.whl"))
    if len(wheels) != 1:
        raise WheelBuildError(command, 0, f"expected one wheel in {out_dir}, found {wheels}")
    return wheels[0]


def _run_pip(command: list[str], env: dict[str, str]) -> None:
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


def pinned_requirements(path: Path = RUNTIME_REQUIREMENTS) -> dict[str, str]:
    """Name -> version of each pinned runtime dependency (`name==version --hash=...`)."""
    pins: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        requirement = line.split("#", 1)[0].split()
        if requirement:
            name, _, version = requirement[0].partition("==")
            pins[name.lower().replace("-", "_")] = version
    return pins


def _wanted(*, package: bool = True) -> list[str]:
    """The wheel file names (as globs) of an asset: one per pin, and the package's own."""
    wanted = [f"{name}-{version}-*.whl" for name, version in pinned_requirements().items()]
    return [f"{PACKAGE}-*.whl", *wanted] if package else wanted


def _missing_wheels(directory: Path, *, package: bool = True) -> list[str]:
    """The wanted wheels that a directory does not hold exactly once."""
    return [p for p in _wanted(package=package) if len(list(directory.glob(p))) != 1]


def _unpinned_wheels(directory: Path) -> list[str]:
    """Wheels that are no pin's (another version of one, say): pip could pick them."""
    return sorted(
        found.name
        for found in directory.glob("*.whl")
        if not any(fnmatch.fnmatch(found.name, pattern) for pattern in _wanted())
    )


def download_dependencies(out_dir: Path) -> None:
    """Downloads the pinned wheels of the runtime dependencies into `out_dir`: wheels
    only, no dependencies of theirs, each file checked against its hash."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--only-binary=:all:",
        "--no-deps",
        "--require-hashes",
        "--disable-pip-version-check",
        "--quiet",
        "-r",
        str(RUNTIME_REQUIREMENTS),
        "-d",
        str(out_dir),
    ]
    _run_pip(command, dict(os.environ))
    missing = _missing_wheels(out_dir, package=False)
    if missing:
        raise WheelBuildError(command, 0, f"expected the wheels {missing} in {out_dir}")


@functools.cache
def build_asset(project_dir: Path = REPO_ROOT) -> Path:
    """The asset directory: the package's wheel and its pinned dependencies' wheels."""
    out_dir = build_wheel(project_dir).parent
    download_dependencies(out_dir)
    return out_dir


@functools.cache
def asset_with(wheel_path: Path) -> Path:
    """An asset directory of a prebuilt package wheel and the pinned dependencies."""
    work_dir = Path(tempfile.mkdtemp(prefix="awscli-uploader-asset-"))
    atexit.register(shutil.rmtree, work_dir, ignore_errors=True)
    shutil.copy2(wheel_path, work_dir / wheel_path.name)
    download_dependencies(work_dir)
    return work_dir


def daemon_wheel(asset_dir: Path) -> Path:
    """The package's own wheel in an asset directory."""
    (wheel,) = asset_dir.glob(f"{PACKAGE}-*.whl")
    return wheel


def resolve_asset(wheel_path: str | None) -> Path:
    """The asset directory: built when no `wheel_path` is given; a prebuilt wheel with
    the pinned dependencies; or a prebuilt asset directory (as `wheel.py DIR` writes it),
    used as it is (offline)."""
    if wheel_path is None:
        return build_asset()
    path = Path(wheel_path)
    if path.is_dir():
        missing, unpinned = _missing_wheels(path), _unpinned_wheels(path)
        if missing:
            raise FileNotFoundError(f"wheel_path {wheel_path!r} lacks the wheels {missing}")
        if unpinned:
            raise FileNotFoundError(f"wheel_path {wheel_path!r} has unpinned wheels {unpinned}")
        return path
    return asset_with(resolve_wheel(wheel_path))


def resolve_wheel(wheel_path: str | None) -> Path:
    """The prebuilt wheel when one is given, else a freshly built one."""
    if wheel_path is None:
        return build_wheel()
    path = Path(wheel_path)
    if not path.is_file() or path.suffix != ".whl":
        raise FileNotFoundError(f"wheel_path {wheel_path!r} is not a .whl file")
    return path


if __name__ == "__main__":
    # python3 infra/awscli_uploader_infra/wheel.py DIR: the same wheels the Python stack ships
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "dist")
    target.mkdir(parents=True, exist_ok=True)
    for built in sorted(build_asset().iterdir()):
        print(shutil.copy2(built, target))
