"""Helpers for the infra tests: skip-or-fail rules, reading synthesized user data, wheels
and venvs."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import os
import re
import runpy
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"
TOKEN = "TOKEN"


def require_aws_cdk(module: str = "aws_cdk") -> None:
    """A module skip with the reason unless `module` (of the [infra] extra: aws_cdk,
    cdk_nag) is installed; under CI=true a missing install fails. It finds the package and
    imports nothing: importing aws_cdk starts a jsii runtime (a node process, seconds of
    CPU), which the tests do when they run, not every xdist worker when it collects."""
    if importlib.util.find_spec(module) is None:
        message = f"{module} is not importable; pip install -e '.[infra]'"
        if IN_CI:
            pytest.fail(message + " (CI must run the infra tests)", pytrace=False)
        pytest.skip(message, allow_module_level=True)


def require_tool(name: str, *, in_ci: bool = True, install: str = "") -> str:
    """The tool's path, or a skip (saying how to `install` it); under CI=true a missing tool
    fails when `in_ci`."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed" + (f": {install}" if install else "")
        if IN_CI and in_ci:
            pytest.fail(message + " (CI must run this check)", pytrace=False)
        pytest.skip(message)
    return path


def shellcheck(path: Path) -> subprocess.CompletedProcess[str]:
    tool = require_tool("shellcheck")
    return subprocess.run(
        [tool, "-S", "warning", "-s", "bash", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def systemd_verify(unit: Path) -> subprocess.CompletedProcess[str]:
    tool = require_tool("systemd-analyze", in_ci=False)
    return subprocess.run(
        [tool, "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def exposure(unit: Path) -> float:
    """The unit's overall exposure from `systemd-analyze security --offline=true`."""
    tool = require_tool("systemd-analyze", in_ci=False)
    result = subprocess.run(
        [tool, "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if "--offline" in result.stderr and "unrecognized" in result.stderr:
        pytest.skip("systemd-analyze is too old for --offline (systemd 250 or newer)")
    last = (result.stdout.strip().splitlines() or [""])[-1]
    found = re.search(r"Overall exposure level for .*: ([0-9.]+) ", last)
    assert found, result.stdout + result.stderr
    return float(found.group(1))


def only_resource(template: Any, resource_type: str) -> tuple[str, dict[str, Any]]:
    """The logical id and body of the single resource of a type, found, not hard-coded."""
    found: dict[str, dict[str, Any]] = template.find_resources(resource_type)
    assert len(found) == 1, f"expected one {resource_type}, found {sorted(found)}"
    return next(iter(found.items()))


def user_data_text(template: Any) -> str:
    """The launch template's user data, every CloudFormation expression shown as TOKEN."""
    _, launch_template = only_resource(template, "AWS::EC2::LaunchTemplate")
    user_data = launch_template["Properties"]["LaunchTemplateData"]["UserData"]["Fn::Base64"]
    if isinstance(user_data, str):
        return user_data
    separator, parts = user_data["Fn::Join"]
    return str(separator).join(part if isinstance(part, str) else TOKEN for part in parts)


def heredoc(text: str, delimiter: str) -> str:
    """The body of the first `<<'DELIMITER'` here-document in a script."""
    start = text.index(f"<<'{delimiter}'\n") + len(f"<<'{delimiter}'\n")
    end = text.index(f"\n{delimiter}\n", start)
    return text[start : end + 1]


def _record_line(archive: zipfile.ZipFile, name: str, data: bytes) -> str:
    archive.writestr(name, data)
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def make_wheel(path: Path, files: dict[str, bytes], metadata: str = "") -> None:
    """A wheel named as `path` says, of `files`, with more METADATA lines."""
    name, version = path.name.split("-")[:2]
    dist_info = f"{name}-{version}.dist-info"
    files = {
        **files,
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        f"{metadata}".encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    with zipfile.ZipFile(path, "w") as archive:
        records = [_record_line(archive, name, data) for name, data in files.items()]
        records.append(f"{dist_info}/RECORD,,")
        archive.writestr(f"{dist_info}/RECORD", "\n".join(records) + "\n")


def venv_with_this_pip(path: Path) -> None:
    """A venv at `path` whose `python -m pip` is the pip of the Python running the tests,
    lent by a .pth file. (`python -m venv` installs a pip of its own: ~5 s of
    CPU.) pip installs into the venv that runs it, so this one installs into `path`."""
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=300
    )
    spec = importlib.util.find_spec("pip")
    assert spec is not None and spec.submodule_search_locations, "no pip to lend"
    lent = path / "lent-pip"
    lent.mkdir()
    (lent / "pip").symlink_to(spec.submodule_search_locations[0])
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    (path / "lib" / version / "site-packages" / "lent-pip.pth").write_text(f"{lent}\n")


APP = Path(__file__).resolve().parents[2] / "infra" / "app.py"


def run_main(context: dict[str, Any], tmp_path: Path) -> int:
    """The cdk app's main() in this process (aws-cdk-lib must be installed), synthesizing
    into `tmp_path / "cdk.out"`: its exit code."""
    from aws_cdk import App

    main = runpy.run_path(str(APP))["main"]
    code: int = main(App(context=context, outdir=str(tmp_path / "cdk.out")))
    return code
