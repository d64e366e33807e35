"""Which wheel the stack ships; the real build runs in test_infra_app.py."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from awscli_uploader_infra import wheel
from awscli_uploader_infra.wheel import WheelBuildError, build_wheel, resolve_wheel
from pytest_subprocess import FakeProcess
from pytest_subprocess.fake_popen import FakePopen


def test_a_prebuilt_wheel_is_used_as_given(dummy_wheel: Path) -> None:
    assert resolve_wheel(str(dummy_wheel)) == dummy_wheel


@pytest.mark.parametrize("name", ["missing.whl", "package.tar.gz"])
def test_a_prebuilt_wheel_must_be_a_whl_file(tmp_path: Path, name: str) -> None:
    (tmp_path / "package.tar.gz").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="is not a"):
        resolve_wheel(str(tmp_path / name))


def test_building_outside_a_project_names_the_problem(tmp_path: Path) -> None:
    with pytest.raises(WheelBuildError, match=r"no pyproject\.toml in"):
        build_wheel(tmp_path)


def test_a_failed_build_carries_the_command_and_its_output(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("this is not toml [\n")
    with pytest.raises(WheelBuildError) as raised:
        build_wheel(tmp_path)
    assert raised.value.returncode not in (None, 0)
    assert raised.value.command[1:4] == ["-m", "pip", "wheel"]
    assert "toml" in raised.value.output.lower()


def _project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "0"\n')
    return tmp_path


def test_a_hung_build_is_ended_with_a_clear_error(
    tmp_path: Path, fp: FakeProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pip hanging can't be had for real on demand: pytest-subprocess stands in for it
    monkeypatch.setattr(wheel, "BUILD_TIMEOUT_SECONDS", 1)

    def hang(process: FakePopen) -> None:
        raise subprocess.TimeoutExpired(process.args, wheel.BUILD_TIMEOUT_SECONDS)

    fp.register([sys.executable, "-m", "pip", "wheel", fp.any()], callback=hang)
    with pytest.raises(WheelBuildError, match="timed out after 1 s"):
        build_wheel(_project(tmp_path))


def test_a_build_that_makes_no_wheel_is_an_error(tmp_path: Path, fp: FakeProcess) -> None:
    fp.register([sys.executable, "-m", "pip", "wheel", fp.any()], returncode=0)
    with pytest.raises(WheelBuildError, match="expected one wheel"):
        build_wheel(_project(tmp_path))
    assert fp.call_count([sys.executable, "-m", "pip", "wheel", fp.any()]) == 1


def _checkout(path: Path, readme: str) -> Path:
    path.mkdir()
    shutil.copy2(wheel.REPO_ROOT / "pyproject.toml", path / "pyproject.toml")
    shutil.copytree(wheel.REPO_ROOT / "awscli_uploader", path / "awscli_uploader")
    (path / "README.md").write_text(readme)
    (path / "notes.txt").write_text(readme)  # anything else in the checkout
    return path


@pytest.mark.slow
def test_the_asset_depends_on_the_code_alone(tmp_path: Path) -> None:
    first = build_wheel(_checkout(tmp_path / "a", "# one README\n"))
    second = build_wheel(_checkout(tmp_path / "b", "# an edited README, another day\n"))
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as archive:
        names = archive.namelist()
        (info,) = [n for n in names if n.endswith(".dist-info/WHEEL")]
        pinned = wheel.BUILD_CONSTRAINTS.read_text().split("setuptools==")[1].split()[0]
        assert f"Generator: setuptools ({pinned})" in archive.read(info).decode()
    assert all(n.startswith(("awscli_uploader/", "awscli_uploader-")) for n in names)
