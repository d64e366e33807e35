"""Which wheels the stack ships; the real build, and that it is reproducible, are in
test_infra_app.py."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from awscli_uploader_infra import wheel
from awscli_uploader_infra.wheel import (
    WheelBuildError,
    build_asset,
    build_wheel,
    download_dependencies,
    pinned_requirements,
    resolve_asset,
    resolve_wheel,
)
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


PIP_DOWNLOAD = [sys.executable, "-m", "pip", "download"]


def _option(args: object, option: str) -> Path:
    """The value after `option` in a (fake) command line."""
    assert isinstance(args, (list, tuple))
    words = [str(arg) for arg in args]
    return Path(words[words.index(option) + 1])


def _fake_downloads(process: FakePopen) -> None:
    """pip download as it goes well: one wheel per pin, where -d says."""
    for name, version in pinned_requirements().items():
        (_option(process.args, "-d") / f"{name}-{version}-py3-none-any.whl").write_bytes(b"")


def test_the_asset_holds_the_package_wheel_and_the_pinned_dependencies(
    tmp_path: Path, fp: FakeProcess
) -> None:
    def fake_build(process: FakePopen) -> None:
        out_dir = _option(process.args, "-w")
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "awscli_uploader-0-py3-none-any.whl").write_bytes(b"")

    fp.register([sys.executable, "-m", "pip", "wheel", fp.any()], callback=fake_build)
    fp.register([*PIP_DOWNLOAD, fp.any()], callback=_fake_downloads)
    asset = build_asset(_project(tmp_path))
    pins = pinned_requirements()
    assert set(pins) == {"sh", "click", "prometheus_client"}
    assert sorted(p.name for p in asset.iterdir()) == sorted(
        ["awscli_uploader-0-py3-none-any.whl"]
        + [f"{name}-{version}-py3-none-any.whl" for name, version in pins.items()]
    )
    calls = [[str(word) for word in call] for call in fp.calls]
    (download,) = [call for call in calls if call[:4] == PIP_DOWNLOAD]
    # wheels only, not their dependencies, each one checked against its pinned hash
    assert {"--only-binary=:all:", "--no-deps", "--require-hashes"} <= set(download)
    assert _option(download, "-r") == wheel.RUNTIME_REQUIREMENTS


def test_a_hung_download_is_ended_with_a_clear_error(
    tmp_path: Path, fp: FakeProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wheel, "BUILD_TIMEOUT_SECONDS", 1)

    def hang(process: FakePopen) -> None:
        raise subprocess.TimeoutExpired(process.args, wheel.BUILD_TIMEOUT_SECONDS)

    fp.register([*PIP_DOWNLOAD, fp.any()], callback=hang)
    with pytest.raises(WheelBuildError, match="timed out after 1 s"):
        download_dependencies(tmp_path)


def test_a_download_that_makes_no_wheel_is_an_error(tmp_path: Path, fp: FakeProcess) -> None:
    fp.register([*PIP_DOWNLOAD, fp.any()], returncode=0)
    with pytest.raises(WheelBuildError, match=r"expected the wheels \['sh-2"):
        download_dependencies(tmp_path)


def test_a_failed_download_carries_pips_output(tmp_path: Path, fp: FakeProcess) -> None:
    fp.register([*PIP_DOWNLOAD, fp.any()], returncode=1, stderr="THESE PACKAGES DO NOT MATCH")
    with pytest.raises(WheelBuildError, match="DO NOT MATCH") as raised:
        download_dependencies(tmp_path)
    assert raised.value.returncode == 1


def test_a_prebuilt_wheel_gets_the_pinned_dependencies(dummy_wheel: Path, fp: FakeProcess) -> None:
    fp.register([*PIP_DOWNLOAD, fp.any()], callback=_fake_downloads)
    asset = resolve_asset(str(dummy_wheel))
    assert (asset / dummy_wheel.name).read_bytes() == dummy_wheel.read_bytes()
    assert len(list(asset.glob("*.whl"))) == 1 + len(pinned_requirements())


def test_a_prebuilt_asset_directory_is_used_as_it_is(dummy_asset: Path) -> None:
    assert resolve_asset(str(dummy_asset)) == dummy_asset


def test_a_prebuilt_asset_directory_must_hold_every_pinned_wheel(
    tmp_path: Path, dummy_asset: Path
) -> None:
    shutil.copytree(dummy_asset, tmp_path / "asset")
    (sh,) = (tmp_path / "asset").glob("sh-*.whl")
    sh.unlink()
    with pytest.raises(FileNotFoundError, match=r"lacks the wheels \['sh-2\.4\.0-\*\.whl'\]"):
        resolve_asset(str(tmp_path / "asset"))


def test_every_dependency_of_the_package_is_pinned_within_its_range() -> None:
    requirements = pytest.importorskip("packaging.requirements")
    tomllib = pytest.importorskip("tomllib")  # Python 3.11 and newer
    project = tomllib.loads((wheel.REPO_ROOT / "pyproject.toml").read_text())["project"]
    pins = pinned_requirements()
    dependencies = [requirements.Requirement(d) for d in project["dependencies"]]
    assert sorted(d.name.lower().replace("-", "_") for d in dependencies) == sorted(pins)
    for dependency in dependencies:
        assert dependency.specifier.contains(pins[dependency.name.lower()]), dependency


def test_a_prebuilt_asset_directory_may_hold_no_other_version(
    tmp_path: Path, dummy_asset: Path
) -> None:
    # pip would install the newest of two wheels of sh: the one that is not pinned
    shutil.copytree(dummy_asset, tmp_path / "asset")
    (tmp_path / "asset" / "sh-9.0.0-py3-none-any.whl").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"unpinned wheels \['sh-9\.0\.0-py3"):
        resolve_asset(str(tmp_path / "asset"))


@pytest.mark.slow
def test_the_pinned_wheels_are_downloaded_as_pinned(tmp_path: Path) -> None:
    download_dependencies(tmp_path)
    hashes = {
        line.split()[0]: line.split("--hash=sha256:")[1].split()[0]
        for line in wheel.RUNTIME_REQUIREMENTS.read_text().splitlines()
        if line and not line.startswith("#")
    }
    for requirement, digest in hashes.items():
        name, version = requirement.split("==")
        (found,) = tmp_path.glob(f"{name}-{version}-py3-none-any.whl")  # pure Python
        assert hashlib.sha256(found.read_bytes()).hexdigest() == digest
