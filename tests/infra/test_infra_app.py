"""The cdk app end to end: a real wheel build and `cdk synth` into a temporary cloud
assembly; then the app again, in this process (the jsii worker's runtime), from another
checkout's build, which must give the same asset and template."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from awscli_uploader_infra import render
from awscli_uploader_infra.wheel import (
    BUILD_CONSTRAINTS,
    REPO_ROOT,
    build_wheel,
    pinned_requirements,
)
from infra_helpers import require_aws_cdk, require_tool, run_main, venv_with_this_pip

require_aws_cdk()


# every test here needs the `cdk synth` (a wheel build and a synth); the second synth is
# in-process, in the worker whose jsii runtime has loaded aws-cdk-lib already (~9 s of CPU)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("jsii")]

INFRA_DIR = Path(__file__).resolve().parents[2] / "infra"
STACK = "AwscliUploaderSpot"
CONTEXT = {"rootDir": "/data/s3", "imageId": "ami-0123456789abcdef0"}
REGION = "eu-west-1"
# What `cdk synth` (CLI 2.1149) adds to the context it hands its app in CDK_CONTEXT_JSON.
CLI_CONTEXT = {
    "aws:cdk:enable-path-metadata": True,
    "aws:cdk:enable-asset-metadata": True,
    "aws:cdk:version-reporting": True,
    "aws:cdk:bundling-stacks": ["**"],
    "@aws-cdk/core:failSynthOnValidationErrors": False,
}


def cdk_synth(out_dir: Path) -> subprocess.CompletedProcess[str]:
    """`cdk synth` as a user runs it: the checked-in cdk.json, its app and its context."""
    cdk = require_tool("cdk", install="npm install -g aws-cdk@2")
    bin_dir = str(Path(sys.executable).parent)  # cdk.json's `python3` is this Python
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    # The same region for every synth, and no account: with the developer's credentials the
    # CLI would look one up and hand it to the app, which the in-process synth has not.
    env.update(AWS_REGION=REGION, AWS_DEFAULT_REGION=REGION, AWS_EC2_METADATA_DISABLED="true")
    env.update(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    context = [f"{key}={value}" for key, value in CONTEXT.items()]
    return subprocess.run(
        [cdk, "synth", "--no-notices", "--quiet", *(c for pair in context for c in ("-c", pair)),
         "-o", str(out_dir)],
        cwd=INFRA_DIR,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out_dir = tmp_path_factory.mktemp("app") / "cdk.out"
    result = cdk_synth(out_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    return out_dir


def test_app_synthesizes_the_stack(assembly: Path) -> None:
    manifest = json.loads((assembly / "manifest.json").read_text())
    assert manifest["artifacts"][STACK]["type"] == "aws:cloudformation:stack"
    template = json.loads((assembly / f"{STACK}.template.json").read_text())
    types = {resource["Type"] for resource in template["Resources"].values()}
    assert {
        "AWS::EC2::LaunchTemplate",
        "AWS::AutoScaling::AutoScalingGroup",
        "AWS::IAM::Policy",
    } <= types


def test_app_ships_a_wheel_built_from_this_repo(assembly: Path) -> None:
    (wheel,) = assembly.glob("asset.*/awscli_uploader-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert "awscli_uploader/__init__.py" in names
        (metadata,) = [name for name in names if name.endswith(".dist-info/METADATA")]
        assert "Name: awscli-uploader" in archive.read(metadata).decode()
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        assert "awscli-uploader = awscli_uploader.cli:main" in archive.read(entry_points).decode()
        # Reproducible: fixed timestamps keep the asset hash, and so the instance, stable.
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        # ...and so does the pinned build backend, whatever setuptools is the newest
        (info,) = [n for n in names if n.endswith(".dist-info/WHEEL")]
        pinned = BUILD_CONSTRAINTS.read_text().split("setuptools==")[1].split()[0]
        assert f"Generator: setuptools ({pinned})" in archive.read(info).decode()
    assert all(n.startswith(("awscli_uploader/", "awscli_uploader-")) for n in names)
    template = (assembly / f"{STACK}.template.json").read_text()
    assert "WHEEL_NAME='awscli_uploader-" in template


def test_app_ships_the_pinned_dependencies_next_to_it(assembly: Path) -> None:
    (asset,) = [path for path in assembly.glob("asset.*") if path.is_dir()]
    assert sorted(path.name for path in asset.iterdir()) == sorted(
        [next(asset.glob("awscli_uploader-*.whl")).name]
        + [f"{name}-{version}-py3-none-any.whl" for name, version in pinned_requirements().items()]
    )
    manifest = json.loads((assembly / f"{STACK}.assets.json").read_text())
    (entry,) = [a for a in manifest["files"].values() if a["source"]["path"] == asset.name]
    assert entry["source"]["packaging"] == "zip"  # one S3 object, unpacked at boot


def _checkout(path: Path, readme: str) -> Path:
    """Another checkout of the package's code: another README and another file beside it."""
    path.mkdir()
    shutil.copy2(REPO_ROOT / "pyproject.toml", path / "pyproject.toml")
    shutil.copytree(REPO_ROOT / "awscli_uploader", path / "awscli_uploader")
    (path / "README.md").write_text(readme)
    (path / "notes.txt").write_text(readme)  # anything else in the checkout
    return path


def test_a_second_synth_gives_the_same_asset_and_template(
    assembly: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A redeploy without code changes, another day, from a checkout whose README (the
    package's long description) and other files differ: a new build, a new download and a
    synth in another process (this one: another hash seed, other temporary directories) give
    the same asset hash, so the same launch template, so the instance stays."""
    rebuilt = build_wheel(_checkout(tmp_path / "checkout", "# an edited README, another day\n"))
    (shipped,) = assembly.glob("asset.*/awscli_uploader-*.whl")
    assert rebuilt.read_bytes() == shipped.read_bytes()  # the wheel depends on the code alone
    # the app as `cdk synth` runs it, with the same context and environment
    monkeypatch.setenv("CDK_DEFAULT_REGION", REGION)
    monkeypatch.delenv("CDK_DEFAULT_ACCOUNT", raising=False)
    context = json.loads((INFRA_DIR / "cdk.json").read_text())["context"]
    context.update(CONTEXT, **CLI_CONTEXT, wheelPath=str(rebuilt))  # pins downloaded again
    assert run_main(context, tmp_path) == 0
    again = tmp_path / "cdk.out"
    template = f"{STACK}.template.json"
    assert (again / template).read_text() == (assembly / template).read_text()
    assert sorted(p.name for p in again.glob("asset.*")) == sorted(
        p.name for p in assembly.glob("asset.*")
    )


def test_the_asset_installs_into_a_venv_offline(assembly: Path, tmp_path: Path) -> None:
    """What the instance does at boot: pip with no index at all, the asset's wheels alone."""
    (asset,) = [path for path in assembly.glob("asset.*") if path.is_dir()]
    venv = tmp_path / "venv"
    venv_with_this_pip(venv)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PIP_CONFIG_FILE": os.devnull}
    (wheel,) = asset.glob("awscli_uploader-*.whl")
    command = [str(venv / "bin" / "python"), "-m", "pip", "install", "--no-input", "--quiet"]
    command += ["--no-index", "--find-links", str(asset), str(wheel)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    freeze = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "freeze", "--all"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout.lower()
    for name, version in pinned_requirements().items():
        assert f"{name}=={version}" in freeze.splitlines()
    run = subprocess.run(
        [str(venv / "bin" / "awscli-uploader"), "--help"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr


def test_cdk_synth_takes_the_buckets_from_the_checked_in_cdk_json(assembly: Path) -> None:
    template = (assembly / f"{STACK}.template.json").read_text()
    assert "arn:aws:s3:::example-simulation-results/*" in template
    assert render.SERVICE_NAME in template
