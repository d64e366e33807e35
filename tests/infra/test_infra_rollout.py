"""infra/README.md's rollout recipe, run: a rebuilt wheel of the same version replaces the
installed package only with --force-reinstall, and the recipe names the wheel's real file."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from infra_helpers import make_wheel, venv_with_this_pip

pytestmark = pytest.mark.slow  # a venv and pip installs

REPO = Path(__file__).resolve().parents[2]
INSTALL_DIR = "/opt/awscli-uploader"


def _recipe() -> str:
    text = (REPO / "infra" / "README.md").read_text()
    start = text.index("<!-- rollout recipe: tests/infra/test_infra_rollout.py -->")
    (block,) = re.findall(r"```bash\n(.*?)```", text[start:], re.DOTALL)[:1]
    return str(block)


def _wheel_name() -> str:
    pyproject = (REPO / "pyproject.toml").read_text()
    name, version = (
        re.search(rf'^{key} = "([^"]+)"$', pyproject, re.MULTILINE).group(1)  # type: ignore[union-attr]
        for key in ("name", "version")
    )
    return f"{name.replace('-', '_')}-{version}-py3-none-any.whl"


def test_the_recipe_names_the_wheel_that_wheel_py_builds() -> None:
    assert f"WHEEL={_wheel_name()}" in _recipe().splitlines()[0].split("  #")[0]


def _version_marker(venv: Path) -> str:
    return subprocess.run(
        [str(venv / "bin" / "python"), "-I", "-c", "import awscli_uploader.build as b; print(b.X)"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()


def test_the_recipes_install_replaces_a_wheel_of_the_same_version(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    venv_with_this_pip(venv)
    dist = venv / "dist"
    dist.mkdir()
    wheel = dist / _wheel_name()
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PIP_CONFIG_FILE": os.devnull}

    def build(marker: str) -> None:
        make_wheel(
            wheel, {"awscli_uploader/__init__.py": b"", "awscli_uploader/build.py": marker.encode()}
        )

    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-index"]
    build("X = 'deployed'\n")
    subprocess.run([*pip, "--no-deps", str(wheel)], env=env, check=True, timeout=300)
    build("X = 'rebuilt'\n")
    # what the old recipe did: pip sees the same version and keeps the installed files
    subprocess.run([*pip, "--no-deps", str(wheel)], env=env, check=True, timeout=300)
    assert _version_marker(venv) == "deployed"
    # the recipe's own install line, with this venv for the instance's
    lines = _recipe().replace("\\\n", " ").splitlines()
    (install,) = [line for line in lines if " -m pip install " in line]
    command = ["bash", "-euc", f"WHEEL={wheel.name}\n" + install.replace(INSTALL_DIR, str(venv))]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _version_marker(venv) == "rebuilt"
