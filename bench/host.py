"""The host every contender runs on: this checkout, the AWS CLI to use, an environment that
keeps the user's AWS and rclone configuration out, and a line naming the machine."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REGION = "eu-west-1"


class BenchError(Exception):
    """A contender failed or the harness could not set up; the run is not a measurement."""


def find_cli(which: str | None) -> tuple[str, str]:
    """(label, path) of the AWS CLI: v1 next to this Python, v2 Debian's; v2 when present.
    Debian's is asked its version only when it may be chosen (an aws process costs ~0.7 s
    of CPU)."""
    v1 = Path(sys.executable).parent / "aws"
    v2 = Path("/usr/bin/aws")
    found = {"v1": str(v1) if v1.exists() else None, "v2": None}
    if which != "v1" and v2.exists() and "aws-cli/2" in cli_version(str(v2)):
        found["v2"] = str(v2)
    label = which or ("v2" if found["v2"] else "v1")
    path = found.get(label)
    if path is None:
        raise BenchError(
            f"AWS CLI {label} not found (v1: pip install awscli; v2: apt install awscli)"
        )
    return label, path


@functools.cache
def cli_version(path: str) -> str:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60)
    except OSError:
        return ""
    return (out.stdout + out.stderr).strip()


def bench_env(workdir: Path) -> dict[str, str]:
    """The environment of every process: fake keys, no user config, the worktree's package."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RCLONE_"))}
    for name in ("aws-config", "aws-credentials", "rclone.conf"):
        (workdir / name).write_text("")
    env.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_CONFIG_FILE=str(workdir / "aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(workdir / "aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_DEFAULT_REGION=REGION,
        AWS_PAGER="",
        RCLONE_CONFIG=str(workdir / "rclone.conf"),
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p),
    )
    return env


def machine() -> str:
    """One line naming the machine, since absolute times mean nothing without it."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem = Path("/proc/meminfo").read_text().split()[1]
        ram = f"{int(mem) / 1024**2:.1f} GiB RAM"  # kB
    except (OSError, IndexError, ValueError):
        ram = "unknown RAM"
    return f"{os.cpu_count()} cores ({model}), {ram}, Python {sys.version.split()[0]}"
