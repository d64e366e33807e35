"""What replaces the instance: each input changed alone, the launch template and the group
compared with those of the unchanged stack. infra/README.md's table is this test's."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from infra_helpers import only_resource, require_aws_cdk

if TYPE_CHECKING:
    from aws_cdk import App

# aws_cdk (jsii: a node process, seconds of CPU) is imported by the functions that use it,
# not by every xdist worker when it collects
require_aws_cdk()

# one worker loads the jsii assembly of aws-cdk-lib (seconds of node CPU) for all such modules
pytestmark = pytest.mark.xdist_group("jsii")

README = Path(__file__).resolve().parents[2] / "infra" / "README.md"
KMS_KEY = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
# The group's properties whose change CloudFormation's AutoScalingRollingUpdate acts on.
ROLLING_UPDATE_TRIGGERS = ("MixedInstancesPolicy", "VPCZoneIdentifier", "LaunchTemplate")

Change = Callable[["App", dict[str, Any]], None]


def _set(**props: Any) -> Change:
    def change(_app: App, base: dict[str, Any]) -> None:
        base.update(props)

    return change


def _topic(app: App, base: dict[str, Any]) -> None:
    from aws_cdk import Stack
    from aws_cdk import aws_sns as sns

    topic_arn = "arn:aws:sns:eu-west-1:123456789012:alerts"
    shared = Stack(app, "Shared")
    sns.Topic(shared, "Alerts")  # a stack of its own, not empty
    base["alarm_topic"] = sns.Topic.from_topic_arn(shared, "Topic", topic_arn)


def _drain_timeout(_app: App, base: dict[str, Any]) -> None:
    from aws_cdk import Duration

    base.update(drain_timeout=Duration.hours(2))


def _other_wheel(_app: App, base: dict[str, Any]) -> None:
    changed = Path(base["wheel_path"]).with_name("changed-asset")
    if not changed.exists():
        shutil.copytree(base["wheel_path"], changed)
        (wheel,) = changed.glob("awscli_uploader-*.whl")
        wheel.write_bytes(b"another build of the package\n")
    base["wheel_path"] = str(changed)


# input (as the README names it) -> how to change it alone
CHANGES: dict[str, Change] = {
    "bucket_names": _set(bucket_names=["sim-results", "sim-logs"]),
    "kms_key_arns": _set(kms_key_arns=[KMS_KEY]),
    "session_manager": _set(session_manager=True),
    "alarm_topic": _topic,
    "drain_timeout": _drain_timeout,
    "root_dir": _set(root_dir="/data/other/s3"),
    "interval": _set(interval=30),
    "stability": _set(stability=5),
    "region": _set(region="us-east-1"),
    "extra_flags": _set(extra_flags=["--dry-run"]),
    "writer_group": _set(writer_group="simulation"),
    "coordinator_commands": _set(coordinator_commands=["run-the-simulation --fast"]),
    "cloudwatch": _set(cloudwatch=False),
    "instance_types": _set(instance_types=["m6i.large", "m5.large"]),
    "max_price": _set(max_price=0.1),
    "image_id": _set(image_id="ami-0fedcba9876543210"),
    "data_volume_gib": _set(data_volume_gib=200),
    "retain_data_volume": _set(retain_data_volume=False),
    "the package's wheel (a code change)": _other_wheel,
    "a stack tag": lambda _app, base: base.update(tag=("team", "simulation")),
}


def _synth(dummy_asset: Path, change: Change | None) -> dict[str, Any]:
    from aws_cdk import App, Tags
    from aws_cdk.assertions import Template
    from awscli_uploader_infra import SpotInstancesStack

    app = App()
    props: dict[str, Any] = {
        "bucket_names": ["sim-results"],
        "wheel_path": str(dummy_asset),
        "image_id": "ami-0123456789abcdef0",
        "coordinator_commands": ["run-the-simulation"],
    }
    if change is not None:
        change(app, props)
    tag = props.pop("tag", None)
    stack = SpotInstancesStack(app, "Spot", **props)
    if tag is not None:
        Tags.of(stack).add(*tag)
    template = Template.from_stack(stack)
    _, launch_template = only_resource(template, "AWS::EC2::LaunchTemplate")
    _, group = only_resource(template, "AWS::AutoScaling::AutoScalingGroup")
    triggers = {key: group["Properties"].get(key) for key in ROLLING_UPDATE_TRIGGERS}
    return {"launch template": launch_template["Properties"], "group": triggers}


def _replaces(dummy_asset: Path) -> dict[str, bool]:
    base = _synth(dummy_asset, None)
    return {name: _synth(dummy_asset, change) != base for name, change in CHANGES.items()}


def _readme_table() -> dict[str, bool]:
    text = README.read_text()
    start = text.index("<!-- replacement table: tests/infra/test_infra_replacement.py -->")
    rows = re.findall(r"^\| (.+?) \| (yes|no) \|$", text[start : text.index("\n\n", start)], re.M)
    return {name.replace("`", ""): answer == "yes" for name, answer in rows}


def test_the_readme_lists_what_replaces_the_instance_as_this_test_finds_it(
    dummy_asset: Path,
) -> None:
    found = _replaces(dummy_asset)
    assert _readme_table() == found, json.dumps(found, indent=1)
    # the deliberate ones: a change of what runs or where is a new instance; IAM and
    # notifications are not
    assert found["the package's wheel (a code change)"] and found["root_dir"]
    assert not found["bucket_names"] and not found["alarm_topic"]
