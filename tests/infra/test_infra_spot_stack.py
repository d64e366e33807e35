"""The example SpotInstancesStack: an Auto Scaling group of one spot instance that drains
before it goes, its data volume, IMDSv2, role and profile, the signal; lint-clean."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from awscli_uploader_infra import render
from infra_helpers import (
    heredoc,
    only_resource,
    require_aws_cdk,
    shellcheck,
    systemd_verify,
    user_data_text,
)

if TYPE_CHECKING:
    from aws_cdk import App
    from aws_cdk.assertions import Template

# aws_cdk (jsii: a node process, seconds of CPU) and the stack's modules, which import it,
# are imported by the functions that use them, not by every xdist worker when it collects
require_aws_cdk()

# one worker loads the jsii assembly of aws-cdk-lib (seconds of node CPU) for all such modules
pytestmark = pytest.mark.xdist_group("jsii")

ROOT_DIR = "/data/simulation/output/s3"
IMAGE_ID = "ami-0123456789abcdef0"
KMS_KEY = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


@pytest.fixture(scope="module")
def template(dummy_asset: Path) -> Template:
    from aws_cdk import App
    from aws_cdk.assertions import Template
    from awscli_uploader_infra import SpotInstancesStack

    stack = SpotInstancesStack(
        App(),
        "Spot",
        bucket_names=["sim-results", "sim.logs-2"],
        root_dir=ROOT_DIR,
        writer_group="simulation",
        coordinator_commands=['echo "coordinator writes to $S3_ROOT_DIR"'],
        max_price=0.05,
        wheel_path=str(dummy_asset),
        image_id=IMAGE_ID,
        kms_key_arns=[KMS_KEY],
    )
    return Template.from_stack(stack)


def _stack(dummy_asset: Path, app: App | None = None, **props: object) -> Template:
    from aws_cdk import App
    from aws_cdk.assertions import Template
    from awscli_uploader_infra import SpotInstancesStack

    props.setdefault("image_id", IMAGE_ID)
    stack = SpotInstancesStack(
        app or App(),
        "Spot",
        bucket_names=["sim-results"],
        wheel_path=str(dummy_asset),
        **props,  # type: ignore[arg-type]
    )
    return Template.from_stack(stack)


@pytest.fixture(scope="module")
def user_data(template: Template) -> str:
    return user_data_text(template)


def test_launch_template_requires_imdsv2(template: Template) -> None:
    from aws_cdk.assertions import Match

    template.has_resource_properties(
        "AWS::EC2::LaunchTemplate",
        {"LaunchTemplateData": {"MetadataOptions": Match.object_like({"HttpTokens": "required"})}},
    )


def test_spot_capacity_comes_from_the_group_not_from_a_request(template: Template) -> None:
    """No persistent request that could reopen outside the stack: the launch template asks
    for no spot market, the group buys spot capacity and owns its instances."""
    from aws_cdk.assertions import Match
    from awscli_uploader_infra.spot_stack import DEFAULT_INSTANCE_TYPES

    _, launch_template = only_resource(template, "AWS::EC2::LaunchTemplate")
    assert "InstanceMarketOptions" not in launch_template["Properties"]["LaunchTemplateData"]
    for kind in ("AWS::EC2::Instance", "AWS::EC2::SpotFleet", "AWS::EC2::EC2Fleet"):
        template.resource_count_is(kind, 0)
    template.has_resource_properties(
        "AWS::AutoScaling::AutoScalingGroup",
        {
            "MinSize": "1",
            "MaxSize": "1",
            "CapacityRebalance": True,
            "MixedInstancesPolicy": {
                "InstancesDistribution": {
                    "OnDemandBaseCapacity": 0,
                    "OnDemandPercentageAboveBaseCapacity": 0,
                    "SpotAllocationStrategy": "price-capacity-optimized",
                    "SpotMaxPrice": "0.05",
                },
                "LaunchTemplate": Match.object_like(
                    {"Overrides": [{"InstanceType": kind} for kind in DEFAULT_INSTANCE_TYPES]}
                ),
            },
        },
    )
    assert len(DEFAULT_INSTANCE_TYPES) >= 3


def test_a_termination_waits_for_the_drain_hook_which_goes_with_the_group(
    template: Template,
) -> None:
    """The hook is the group's own property: a hook resource would reference the group, so
    CloudFormation would delete it first, and a stack deletion would then terminate the
    instance without a drain. Nothing else that refers to the group by Ref or GetAtt."""
    from awscli_uploader_infra.spot_stack import DRAIN_HOOK_NAME

    group_id, group = only_resource(template, "AWS::AutoScaling::AutoScalingGroup")
    template.resource_count_is("AWS::AutoScaling::LifecycleHook", 0)
    assert group["Properties"]["LifecycleHookSpecificationList"] == [
        {
            "LifecycleHookName": DRAIN_HOOK_NAME,
            "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
            "HeartbeatTimeout": 1800,
            "DefaultResult": "CONTINUE",
        }
    ]
    assert group["Properties"]["AutoScalingGroupName"] == "Spot-uploader"
    others = {k: v for k, v in template.to_json()["Resources"].items() if k != group_id}
    assert f'{{"Ref": "{group_id}"}}' not in json.dumps(others)
    assert f'["{group_id}",' not in json.dumps(others)


def test_the_daemon_learns_the_hook_and_may_complete_it_on_this_group_only(
    template: Template, user_data: str
) -> None:
    from awscli_uploader_infra.spot_stack import DRAIN_HOOK_NAME

    bootstrap = heredoc(user_data, "AWSCLI_UPLOADER_BOOTSTRAP")
    assert f"\nLIFECYCLE_HOOK='{DRAIN_HOOK_NAME}'\n" in bootstrap
    assert "\nAUTOSCALING_GROUP='Spot-uploader'\n" in bootstrap
    assert "\nS3_UPLOAD_LIFECYCLE_HOOK=$LIFECYCLE_HOOK\n" in bootstrap
    assert "\nS3_UPLOAD_AUTOSCALING_GROUP=$AUTOSCALING_GROUP\n" in bootstrap
    _, policy = only_resource(template, "AWS::IAM::Policy")
    (statement,) = [
        s
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s.get("Sid") == "AwscliUploaderLifecycle"
    ]
    assert statement["Action"] == [
        "autoscaling:CompleteLifecycleAction",
        "autoscaling:RecordLifecycleActionHeartbeat",
    ]
    arn = statement["Resource"]["Fn::Join"][1]
    assert arn[-1] == ":autoScalingGroup:*:autoScalingGroupName/Spot-uploader"
    assert "\nS3_UPLOAD_DATA_VOLUME=${LIFECYCLE_HOOK:+$DATA_DEVICE}\n" in bootstrap
    (release,) = [
        s
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s.get("Sid") == "AwscliUploaderReleaseVolume"
    ]
    assert release["Action"] == "ec2:ModifyInstanceAttribute"
    assert release["Resource"]["Fn::Join"][1][-1] == ":instance/*"
    assert release["Condition"] == {
        "StringEquals": {"aws:ResourceTag/aws:autoscaling:groupName": "Spot-uploader"}
    }


def test_replacement_is_a_rolling_update_that_waits_for_the_signal(template: Template) -> None:
    launch_template_id, _ = only_resource(template, "AWS::EC2::LaunchTemplate")
    _, group = only_resource(template, "AWS::AutoScaling::AutoScalingGroup")
    assert group["Properties"]["MixedInstancesPolicy"]["LaunchTemplate"][
        "LaunchTemplateSpecification"
    ] == {
        "LaunchTemplateId": {"Ref": launch_template_id},
        "Version": {"Fn::GetAtt": [launch_template_id, "LatestVersionNumber"]},
    }
    rolling = group["UpdatePolicy"]["AutoScalingRollingUpdate"]
    assert (rolling["MaxBatchSize"], rolling["MinInstancesInService"]) == (1, 0)
    assert rolling["WaitOnResourceSignals"] is True
    assert group["CreationPolicy"] == {"ResourceSignal": {"Count": 1, "Timeout": "PT20M"}}


def test_the_backlog_has_its_own_encrypted_volume_mounted_at_the_root(
    template: Template, user_data: str
) -> None:
    from aws_cdk.assertions import Match
    from awscli_uploader_infra.spot_stack import DATA_DEVICE

    template.has_resource_properties(
        "AWS::EC2::LaunchTemplate",
        {
            "LaunchTemplateData": Match.object_like(
                {
                    "BlockDeviceMappings": [
                        {
                            "DeviceName": DATA_DEVICE,
                            "Ebs": {
                                "DeleteOnTermination": False,
                                "Encrypted": True,
                                "VolumeSize": 100,
                                "VolumeType": "gp3",
                            },
                        }
                    ]
                }
            )
        },
    )
    assert f"\nDATA_DEVICE='{DATA_DEVICE}'\n" in heredoc(user_data, "AWSCLI_UPLOADER_BOOTSTRAP")


def test_a_kept_data_volume_is_tagged_with_its_group(template: Template) -> None:
    """The launch template keeps the data volume (the daemon releases it once drained): a
    volume left by an interruption is found by this tag (and the instance by it too)."""
    from awscli_uploader_infra.spot_stack import VOLUME_TAG

    _, launch_template = only_resource(template, "AWS::EC2::LaunchTemplate")
    specs = launch_template["Properties"]["LaunchTemplateData"]["TagSpecifications"]
    tagged = {spec["ResourceType"]: spec["Tags"] for spec in specs}
    for kind in ("volume", "instance"):
        assert {"Key": VOLUME_TAG, "Value": "Spot-uploader"} in tagged[kind]


def test_the_data_volume_may_go_with_its_instance_on_request(dummy_asset: Path) -> None:
    _, launch_template = only_resource(
        _stack(dummy_asset, retain_data_volume=False), "AWS::EC2::LaunchTemplate"
    )
    (mapping,) = launch_template["Properties"]["LaunchTemplateData"]["BlockDeviceMappings"]
    assert mapping["Ebs"]["DeleteOnTermination"] is True


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"image_id": "latest"}, "image_id 'latest' is invalid"),
        ({"image_id": None}, "the image must be pinned"),
        ({"instance_types": []}, "instance_types must be a non-empty list"),
        ({"instance_types": "c6i.large"}, "instance_types must be a non-empty list"),
        ({"data_volume_gib": 0}, "data_volume_gib 0 is invalid"),
    ],
)
def test_bad_stack_props_are_refused(
    dummy_asset: Path, props: dict[str, object], message: str
) -> None:
    with pytest.raises(render.InvalidSettingsError, match=message):
        _stack(dummy_asset, **props)


def test_a_stuck_start_fails_well_before_the_creation_stops_waiting() -> None:
    """The unit's TimeoutStartSec ends a start that never says READY=1 (the bootstrap's
    `systemctl enable --now` fails, the exit trap signals the failure) with ten minutes of
    the creation signal's timeout left for the bootstrap's own installs before it."""
    from awscli_uploader_infra.group_construct import SIGNAL_TIMEOUT

    unit = render.unit_text(render.USER_DATA_TEMPLATE.read_text())
    (line,) = [line for line in unit.splitlines() if line.startswith("TimeoutStartSec=")]
    seconds = int(line.removeprefix("TimeoutStartSec="))
    assert seconds + 600 <= SIGNAL_TIMEOUT.to_seconds()


def test_the_signal_says_the_uploader_is_up_before_the_coordinator_starts(
    template: Template, user_data: str
) -> None:
    group_id, _ = only_resource(template, "AWS::AutoScaling::AutoScalingGroup")
    signal = f"/opt/aws/bin/cfn-signal --exit-code {{}} --stack Spot --resource {group_id} "
    signal += "--region TOKEN || true\n"
    # a failed bootstrap: the exit trap, at the top, unless the success went out already
    trap = user_data[user_data.index("function exitTrap(){") : user_data.index("trap exitTrap")]
    assert 'if [ -z "${AWSCLI_UPLOADER_SIGNALLED:-}" ]; then\n' in trap
    assert signal.format('"$exitCode"') in trap
    # Type=notify: `systemctl enable --now` in the bootstrap returned once the daemon said
    # READY=1 (or failed it); is-active says it still runs. No sleep stands in for either.
    bootstrap = heredoc(user_data, "AWSCLI_UPLOADER_BOOTSTRAP")
    assert "\nType=notify\n" in render.unit_text(bootstrap)
    assert f"\nsystemctl enable --now {render.SERVICE_NAME}\n" in bootstrap
    assert "sleep" not in user_data[user_data.index(render.BOOTSTRAP_PATH + " || exit 1") :]
    order = [
        user_data.index("trap exitTrap EXIT"),
        user_data.index(f"{render.BOOTSTRAP_PATH} || exit 1"),
        user_data.index(f"systemctl is-active --quiet {render.SERVICE_NAME} || exit 1"),
        user_data.index(signal.format("0") + "AWSCLI_UPLOADER_SIGNALLED=1\n"),
        user_data.index(f"systemctl start --no-block {render.TERMINATING_PATH} "),
    ]
    assert order == sorted(order)


def test_session_manager_is_opt_in(template: Template, dummy_asset: Path) -> None:
    _, role = only_resource(template, "AWS::IAM::Role")
    assert "ManagedPolicyArns" not in role["Properties"]
    with_ssm = _stack(dummy_asset, session_manager=True)
    _, role = only_resource(with_ssm, "AWS::IAM::Role")
    (arn,) = role["Properties"]["ManagedPolicyArns"]
    assert arn["Fn::Join"][1][-1] == ":iam::aws:policy/AmazonSSMManagedInstanceCore"


def test_instance_profile_carries_the_ec2_role(template: Template) -> None:
    role_id, _ = only_resource(template, "AWS::IAM::Role")
    profile_id, _ = only_resource(template, "AWS::IAM::InstanceProfile")
    template.has_resource_properties(
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": {
                "Statement": [
                    {
                        "Action": "sts:AssumeRole",
                        "Effect": "Allow",
                        "Principal": {"Service": "ec2.amazonaws.com"},
                    }
                ]
            }
        },
    )
    template.has_resource_properties("AWS::IAM::InstanceProfile", {"Roles": [{"Ref": role_id}]})
    template.has_resource_properties(
        "AWS::EC2::LaunchTemplate",
        {
            "LaunchTemplateData": {
                "IamInstanceProfile": {"Arn": {"Fn::GetAtt": [profile_id, "Arn"]}}
            }
        },
    )


def test_role_may_only_use_the_buckets_and_the_wheel(template: Template) -> None:
    from aws_cdk.assertions import Match

    role_id, role = only_resource(template, "AWS::IAM::Role")
    assert "ManagedPolicyArns" not in role["Properties"]
    assert "Policies" not in role["Properties"]
    template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "Roles": [{"Ref": role_id}],
            "PolicyDocument": {
                "Statement": Match.array_equals(
                    [
                        Match.object_like({"Sid": "AwscliUploaderWheelAsset"}),
                        Match.object_like(
                            {
                                "Sid": "AwscliUploaderObjects",
                                "Action": [
                                    "s3:PutObject",
                                    "s3:GetObject",
                                    "s3:AbortMultipartUpload",
                                ],
                                "Resource": [
                                    "arn:aws:s3:::sim-results/*",
                                    "arn:aws:s3:::sim.logs-2/*",
                                ],
                            }
                        ),
                        Match.object_like(
                            {
                                "Sid": "AwscliUploaderListBucket",
                                "Action": ["s3:ListBucket", "s3:ListBucketMultipartUploads"],
                                "Resource": ["arn:aws:s3:::sim-results", "arn:aws:s3:::sim.logs-2"],
                            }
                        ),
                        Match.object_like(
                            {
                                "Sid": "AwscliUploaderKms",
                                "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                                "Resource": KMS_KEY,
                            }
                        ),
                        Match.object_like({"Sid": "AwscliUploaderLifecycle"}),
                        Match.object_like({"Sid": "AwscliUploaderReleaseVolume"}),
                        Match.object_like({"Sid": "AwscliUploaderLogs"}),
                        Match.object_like({"Sid": "AwscliUploaderMetrics"}),
                        Match.object_like({"Sid": "AwscliUploaderPublisherAsset"}),
                        {  # the group's signal (cfn-signal), added by aws-cdk-lib
                            "Action": "cloudformation:SignalResource",
                            "Effect": "Allow",
                            "Resource": {"Ref": "AWS::StackId"},
                        },
                    ]
                )
            },
        },
    )


def test_the_image_is_pinned_by_id(template: Template) -> None:
    from aws_cdk.assertions import Match

    template.has_resource_properties(
        "AWS::EC2::LaunchTemplate", {"LaunchTemplateData": Match.object_like({"ImageId": IMAGE_ID})}
    )
    assert "ami-amazon-linux" not in json.dumps(template.find_parameters("*"))


def test_without_an_id_amazon_linux_2023_comes_from_the_context_not_from_ssm(
    dummy_asset: Path,
) -> None:
    from aws_cdk import App, Environment
    from aws_cdk.assertions import Match

    env = Environment(account="123456789012", region="eu-west-1")
    key = (
        "ssm:account=123456789012:parameterName=/aws/service/ami-amazon-linux-latest/"
        "al2023-ami-kernel-6.1-x86_64:region=eu-west-1"
    )
    app = App(context={key: "ami-0fedcba9876543210"})
    template = _stack(dummy_asset, app, image_id=None, env=env)
    template.has_resource_properties(
        "AWS::EC2::LaunchTemplate",
        {"LaunchTemplateData": Match.object_like({"ImageId": "ami-0fedcba9876543210"})},
    )
    assert "ami-amazon-linux" not in json.dumps(template.find_parameters("*"))


def test_no_inbound_access(template: Template) -> None:
    _, group = only_resource(template, "AWS::EC2::SecurityGroup")
    assert "SecurityGroupIngress" not in group["Properties"]


def test_coordinator_gets_the_same_root_dir_in_its_own_unit(user_data: str) -> None:
    bootstrap = heredoc(user_data, "AWSCLI_UPLOADER_BOOTSTRAP")
    assert f"\nROOT_DIR='{ROOT_DIR}'\n" in bootstrap
    assert heredoc(user_data, "AWSCLI_UPLOADER_COORDINATOR") == (
        f'#!/bin/bash\nexport S3_ROOT_DIR={ROOT_DIR}\necho "coordinator writes to $S3_ROOT_DIR"\n'
    )


def test_synthesized_user_data_passes_shellcheck(user_data: str, tmp_path: Path) -> None:
    outer = tmp_path / "user-data.sh"
    outer.write_text(user_data)
    inner = tmp_path / "bootstrap.sh"
    inner.write_text(heredoc(user_data, "AWSCLI_UPLOADER_BOOTSTRAP"))
    coordinator = tmp_path / "coordinator.sh"
    coordinator.write_text(heredoc(user_data, "AWSCLI_UPLOADER_COORDINATOR"))
    for path in (outer, inner, coordinator):
        result = shellcheck(path)
        assert result.returncode == 0, result.stdout + result.stderr


def test_synthesized_unit_passes_systemd_analyze_verify(user_data: str, tmp_path: Path) -> None:
    unit_text = render.unit_text(heredoc(user_data, "AWSCLI_UPLOADER_BOOTSTRAP"))
    # verify insists that ExecStart exists: point it at a stand-in venv.
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "awscli-uploader").write_text("#!/bin/sh\n")
    (venv / "bin" / "awscli-uploader").chmod(stat.S_IRWXU)
    unit = tmp_path / render.SERVICE_NAME
    unit.write_text(unit_text.replace(render.DEFAULT_INSTALL_DIR, str(venv)))
    result = systemd_verify(unit)
    assert result.returncode == 0, result.stderr
    assert str(unit) not in result.stderr, result.stderr


def test_template_passes_cfn_lint(template: Template, tmp_path: Path) -> None:
    from cfnlint.api import lint_file  # type: ignore[import-untyped]

    path = tmp_path / "template.json"
    path.write_text(json.dumps(template.to_json()))
    matches = lint_file(path)
    assert matches == [], "\n".join(str(match) for match in matches)


EC2_USER_DATA_LIMIT = 16 * 1024  # EC2's limit, before base64
COORDINATOR_ROOM = 4 * 1024
# What a deploy-time value may take: an asset's S3 URL (about 125 bytes), a region, the
# log group's generated name (about 60 with the default stack name).
TOKEN_ROOM = 128


def user_data_bytes(template: Template) -> int:
    """The user data's size in bytes, each deploy-time value counted as TOKEN_ROOM."""
    _, launch_template = only_resource(template, "AWS::EC2::LaunchTemplate")
    user_data = launch_template["Properties"]["LaunchTemplateData"]["UserData"]["Fn::Base64"]
    _, parts = user_data["Fn::Join"]
    return sum(len(part.encode()) if isinstance(part, str) else TOKEN_ROOM for part in parts)


def test_user_data_leaves_4_kb_for_the_coordinators_commands(dummy_asset: Path) -> None:
    from aws_cdk import App
    from aws_cdk.assertions import Template
    from awscli_uploader_infra import SpotInstancesStack

    commands = [": " + "x" * (COORDINATOR_ROOM - 2)]
    stack = SpotInstancesStack(
        App(),
        "AwscliUploaderSpot",
        bucket_names=["sim-results", "sim.logs-2"],
        root_dir=ROOT_DIR,
        writer_group="simulation",
        extra_flags=["--dry-run"],
        kms_key_arns=[KMS_KEY],
        wheel_path=str(dummy_asset),
        image_id=IMAGE_ID,
        coordinator_commands=commands,
    )
    assert user_data_bytes(Template.from_stack(stack)) <= EC2_USER_DATA_LIMIT
