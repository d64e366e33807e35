"""The cdk app end to end: a real wheel build and synthesis into a temporary cloud assembly."""

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
from infra_helpers import require_aws_cdk

require_aws_cdk()

pytestmark = pytest.mark.slow  # a real wheel build, and `cdk synth` through the cdk CLI

INFRA_DIR = Path(__file__).resolve().parents[2] / "infra"
STACK = "AwscliUploaderSpot"


def run_app(out_dir: Path, context: dict[str, object]) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, CDK_OUTDIR=str(out_dir), CDK_CONTEXT_JSON=json.dumps(context))
    return subprocess.run(
        [sys.executable, str(INFRA_DIR / "app.py")],
        cwd=out_dir.parent,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="module")
def assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out_dir = tmp_path_factory.mktemp("app") / "cdk.out"
    result = run_app(out_dir, {"bucketNames": "sim-results,sim-logs", "rootDir": "/data/s3"})
    assert result.returncode == 0, result.stderr
    return out_dir


def test_app_synthesizes_the_stack(assembly: Path) -> None:
    manifest = json.loads((assembly / "manifest.json").read_text())
    assert manifest["artifacts"][STACK]["type"] == "aws:cloudformation:stack"
    template = json.loads((assembly / f"{STACK}.template.json").read_text())
    types = {resource["Type"] for resource in template["Resources"].values()}
    assert {"AWS::EC2::LaunchTemplate", "AWS::EC2::Instance", "AWS::IAM::Policy"} <= types


def test_app_ships_a_wheel_built_from_this_repo(assembly: Path) -> None:
    (wheel,) = assembly.glob("asset.*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert "awscli_uploader/__init__.py" in names
        (metadata,) = [name for name in names if name.endswith(".dist-info/METADATA")]
        assert "Name: awscli-uploader" in archive.read(metadata).decode()
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        assert "awscli-uploader = awscli_uploader.cli:main" in archive.read(entry_points).decode()
        # Reproducible: fixed timestamps keep the asset hash, and so the instance, stable.
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    template = (assembly / f"{STACK}.template.json").read_text()
    assert "WHEEL_NAME='awscli_uploader-" in template


def test_app_reports_bad_context_in_one_line(tmp_path: Path) -> None:
    result = run_app(tmp_path / "cdk.out", {"bucketNames": "Not_A_Bucket"})
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("error: awscli-uploader: bucket name 'Not_A_Bucket' is invalid")
    )
    assert "Traceback" not in result.stderr


def test_cdk_synth_works_with_the_checked_in_cdk_json(tmp_path: Path) -> None:
    cdk = shutil.which("cdk")
    if cdk is None:
        pytest.skip("the cdk CLI is not installed: npm install -g aws-cdk@2")
    bin_dir = str(Path(sys.executable).parent)
    env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""))
    result = subprocess.run(
        [cdk, "synth", "--no-notices", "--quiet", "--output", str(tmp_path / "cdk.out")],
        cwd=INFRA_DIR,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    template = (tmp_path / "cdk.out" / f"{STACK}.template.json").read_text()
    assert "arn:aws:s3:::example-simulation-results/*" in template
    assert render.SERVICE_NAME in template
