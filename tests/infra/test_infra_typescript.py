"""The TypeScript path of infra/README.md: its stack file, compiled and synthesized for real."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from awscli_uploader_infra import render
from awscli_uploader_infra.wheel import pinned_requirements
from infra_helpers import IN_CI

INFRA_DIR = Path(__file__).resolve().parents[2] / "infra"
TS_DIR = INFRA_DIR / "typescript"
STACK_FILE = TS_DIR / "lib" / "spot-instances-stack.ts"
WHEEL_NAME = "awscli_uploader-0.1.0-py3-none-any.whl"


def test_the_readme_shows_the_tested_stack_file() -> None:
    readme = (INFRA_DIR / "README.md").read_text()
    blocks = re.findall(r"```ts\n(.*?)```", readme, re.DOTALL)
    assert STACK_FILE.read_text() in blocks


def _node_modules() -> Path:
    modules = TS_DIR / "node_modules"
    node = shutil.which("node")
    if node is None or not (modules / "aws-cdk-lib").is_dir():
        message = "the TypeScript example needs node and `npm ci --prefix infra/typescript`"
        if IN_CI:
            pytest.fail(message + " (.ci/run installs it)", pytrace=False)
        pytest.skip(message)
    return modules


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> None:
    result = subprocess.run(
        command,
        cwd=cwd,
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    modules = _node_modules()
    app = tmp_path_factory.mktemp("ts-app")
    for name in ("bin", "lib"):
        shutil.copytree(TS_DIR / name, app / name, ignore=shutil.ignore_patterns("*.js"))
    shutil.copy2(TS_DIR / "tsconfig.json", app / "tsconfig.json")
    (app / "node_modules").symlink_to(modules)
    copied = app / "lib" / "awscli-uploader"  # as the README says: next to the stack
    copied.mkdir(exist_ok=True)
    shutil.copy2(render.POLICY_TEMPLATE, copied / "policy.json.tmpl")
    shutil.copy2(render.USER_DATA_TEMPLATE, copied / "user_data.sh.tmpl")
    wheels = copied / "wheels"  # as wheel.py writes it
    wheels.mkdir()
    (wheels / WHEEL_NAME).write_bytes(b"stand-in wheel\n")
    for name, version in pinned_requirements().items():
        (wheels / f"{name}-{version}-py3-none-any.whl").write_bytes(b"stand-in dependency\n")
    _run(["node", str(modules / "typescript" / "bin" / "tsc"), "-p", str(app)], app, {})
    context = {"bucketNames": "sim-results,sim-logs", "rootDir": "/data/s3"}
    out = app / "cdk.out"
    _run(
        ["node", str(app / "bin" / "app.js")],
        app,
        {"CDK_OUTDIR": str(out), "CDK_CONTEXT_JSON": json.dumps(context)},
    )
    data: dict[str, Any] = json.loads((out / "AwscliUploaderTs.template.json").read_text())
    data["assets"] = json.loads((out / "AwscliUploaderTs.assets.json").read_text())["files"]
    return data


def _resources(template: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r["Properties"] for r in template["Resources"].values() if r["Type"] == kind]


@pytest.mark.slow
def test_typescript_stack_grants_the_plain_policy(template: dict[str, Any]) -> None:
    (policy,) = _resources(template, "AWS::IAM::Policy")
    statements = {s.get("Sid"): s for s in policy["PolicyDocument"]["Statement"]}
    for expected in render.policy_statements(["sim-results", "sim-logs"]):
        got = statements[expected["Sid"]]
        actions = got["Action"] if isinstance(got["Action"], list) else [got["Action"]]
        assert actions == (
            expected["Action"] if isinstance(expected["Action"], list) else [expected["Action"]]
        )
        assert got["Resource"] == expected["Resource"]
    assert set(statements) == {
        "AwscliUploaderWheelAsset",
        "AwscliUploaderLifecycle",
        "AwscliUploaderReleaseVolume",
        *(s["Sid"] for s in render.policy_statements(["x"])),
    }
    arn = statements["AwscliUploaderLifecycle"]["Resource"]["Fn::Join"][1][-1]
    assert arn == ":autoScalingGroup:*:autoScalingGroupName/AwscliUploaderTs-uploader"


@pytest.mark.slow
def test_typescript_stack_ships_the_wheels_directory_as_one_zip(template: dict[str, Any]) -> None:
    (asset,) = [
        a
        for a in template["assets"].values()
        if a["source"]["path"] != ("AwscliUploaderTs.template.json")
    ]
    assert asset["source"]["packaging"] == "zip"
    assert all(d["objectKey"].endswith(".zip") for d in asset["destinations"].values())


@pytest.mark.slow
def test_typescript_stack_runs_the_rendered_bootstrap(template: dict[str, Any]) -> None:
    (launch_template,) = _resources(template, "AWS::EC2::LaunchTemplate")
    data = launch_template["LaunchTemplateData"]
    parts = data["UserData"]["Fn::Base64"]["Fn::Join"][1]
    text = "".join(p if isinstance(p, str) else "TOKEN" for p in parts)
    assert "<<'AWSCLI_UPLOADER_BOOTSTRAP'\n" in text
    assert "\nROOT_DIR='/data/s3'\n" in text
    assert f"\nWHEEL_NAME='{WHEEL_NAME}'\n" in text
    assert "pip install --no-input --quiet --no-index" in text
    assert not re.search(r"@[A-Z][A-Z0-9_]*@", text)
    assert render.unit_text(text) == render.unit_text(
        render.USER_DATA_TEMPLATE.read_text()
        .replace("@INSTALL_DIR@", "/opt/awscli-uploader")
        .replace("@ROOT_DIR@", "/data/s3")
    )
    assert text.rstrip().endswith("/usr/local/sbin/awscli-uploader-bootstrap || exit 1")
    assert data["ImageId"] == "ami-0123456789abcdef0"
    assert "\nDATA_DEVICE='/dev/sdf'\n" in text
    assert "\nLIFECYCLE_HOOK='awscli-uploader-drain'\n" in text
    assert "\nAUTOSCALING_GROUP='AwscliUploaderTs-uploader'\n" in text
    assert data["BlockDeviceMappings"][0]["DeviceName"] == "/dev/sdf"
    assert data["BlockDeviceMappings"][0]["Ebs"]["DeleteOnTermination"] is False  # as Python's


@pytest.mark.slow
def test_typescript_stack_has_no_spot_request_and_drains_before_termination(
    template: dict[str, Any],
) -> None:
    (launch_template,) = _resources(template, "AWS::EC2::LaunchTemplate")
    assert "InstanceMarketOptions" not in launch_template["LaunchTemplateData"]
    (group,) = _resources(template, "AWS::AutoScaling::AutoScalingGroup")
    distribution = group["MixedInstancesPolicy"]["InstancesDistribution"]
    assert distribution["SpotAllocationStrategy"] == "price-capacity-optimized"
    assert distribution["OnDemandPercentageAboveBaseCapacity"] == 0
    assert group["CapacityRebalance"] is True
    assert _resources(template, "AWS::AutoScaling::LifecycleHook") == []  # the group's own
    (hook,) = group["LifecycleHookSpecificationList"]
    assert hook["LifecycleTransition"] == "autoscaling:EC2_INSTANCE_TERMINATING"
    assert (hook["LifecycleHookName"], hook["DefaultResult"]) == (
        "awscli-uploader-drain",
        "CONTINUE",
    )
