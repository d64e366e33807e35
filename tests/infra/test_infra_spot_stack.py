"""The example SpotInstancesStack: spot options, IMDSv2, role and profile, lint-clean."""

# ruff: noqa: E402 - aws_cdk is imported only once it is known to be installed
from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from infra_helpers import (
    heredoc,
    only_resource,
    require_aws_cdk,
    shellcheck,
    systemd_verify,
    user_data_text,
)

require_aws_cdk()

from aws_cdk import App, Environment
from aws_cdk.assertions import Match, Template
from awscli_uploader_infra import SpotInstancesStack, render

# one worker loads the jsii assembly of aws-cdk-lib (seconds of node CPU) for all such modules
pytestmark = pytest.mark.xdist_group("jsii")

ROOT_DIR = "/data/simulation/output/s3"
IMAGE_ID = "ami-0123456789abcdef0"
KMS_KEY = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


@pytest.fixture(scope="module")
def template(dummy_asset: Path) -> Template:
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
    template.has_resource_properties(
        "AWS::EC2::LaunchTemplate",
        {"LaunchTemplateData": {"MetadataOptions": Match.object_like({"HttpTokens": "required"})}},
    )


def test_launch_template_asks_for_spot_that_stops_by_default(template: Template) -> None:
    template.has_resource_properties(
        "AWS::EC2::LaunchTemplate",
        {
            "LaunchTemplateData": {
                "InstanceMarketOptions": {
                    "MarketType": "spot",
                    "SpotOptions": {
                        "SpotInstanceType": "persistent",
                        "InstanceInterruptionBehavior": "stop",
                        "MaxPrice": "0.05",
                    },
                }
            }
        },
    )


def test_interruption_terminate_is_a_one_time_request(dummy_asset: Path) -> None:
    _stack(dummy_asset, interruption="terminate").has_resource_properties(
        "AWS::EC2::LaunchTemplate",
        {
            "LaunchTemplateData": {
                "InstanceMarketOptions": Match.object_like(
                    {
                        "SpotOptions": {
                            "SpotInstanceType": "one-time",
                            "InstanceInterruptionBehavior": "terminate",
                        }
                    }
                )
            }
        },
    )


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"interruption": "hibernate"}, "interruption 'hibernate' is invalid"),
        ({"image_id": "latest"}, "image_id 'latest' is invalid"),
        ({"image_id": None}, "the image must be pinned"),
    ],
)
def test_bad_stack_props_are_refused(
    dummy_asset: Path, props: dict[str, object], message: str
) -> None:
    with pytest.raises(render.InvalidSettingsError, match=message):
        _stack(dummy_asset, **props)


def test_instance_waits_for_the_bootstrap_signal(template: Template, user_data: str) -> None:
    instance_id, instance = only_resource(template, "AWS::EC2::Instance")
    assert instance["CreationPolicy"] == {"ResourceSignal": {"Count": 1, "Timeout": "PT20M"}}
    trap = user_data[user_data.index("function exitTrap(){") : user_data.index("trap exitTrap")]
    assert (
        '/opt/aws/bin/cfn-signal --exit-code "$exitCode" '
        f"--stack Spot --resource {instance_id} --region TOKEN"
    ) in trap


def test_session_manager_is_opt_in(template: Template, dummy_asset: Path) -> None:
    _, role = only_resource(template, "AWS::IAM::Role")
    assert "ManagedPolicyArns" not in role["Properties"]
    with_ssm = _stack(dummy_asset, session_manager=True)
    _, role = only_resource(with_ssm, "AWS::IAM::Role")
    (arn,) = role["Properties"]["ManagedPolicyArns"]
    assert arn["Fn::Join"][1][-1] == ":iam::aws:policy/AmazonSSMManagedInstanceCore"


def test_instance_is_launched_from_the_launch_template(template: Template) -> None:
    launch_template_id, _ = only_resource(template, "AWS::EC2::LaunchTemplate")
    template.resource_count_is("AWS::EC2::Instance", 1)
    template.has_resource_properties(
        "AWS::EC2::Instance",
        {
            "LaunchTemplate": {
                "LaunchTemplateId": {"Ref": launch_template_id},
                "Version": {"Fn::GetAtt": [launch_template_id, "LatestVersionNumber"]},
            }
        },
    )


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
                                "Action": "s3:ListBucket",
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
                        Match.object_like({"Sid": "AwscliUploaderLogs"}),
                        Match.object_like({"Sid": "AwscliUploaderMetrics"}),
                    ]
                )
            },
        },
    )


def test_the_image_is_pinned_by_id(template: Template) -> None:
    template.has_resource_properties(
        "AWS::EC2::LaunchTemplate", {"LaunchTemplateData": Match.object_like({"ImageId": IMAGE_ID})}
    )
    assert "ami-amazon-linux" not in json.dumps(template.find_parameters("*"))


def test_without_an_id_amazon_linux_2023_comes_from_the_context_not_from_ssm(
    dummy_asset: Path,
) -> None:
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


def test_coordinator_gets_the_same_root_dir_after_the_uploader(user_data: str) -> None:
    bootstrap = heredoc(user_data, "AWSCLI_UPLOADER_BOOTSTRAP")
    assert f"\nROOT_DIR='{ROOT_DIR}'\n" in bootstrap
    export = f"export S3_ROOT_DIR={ROOT_DIR}\n"
    assert user_data.index(f"{render.BOOTSTRAP_PATH} || exit 1") < user_data.index(export)
    assert user_data.index(export) < user_data.index('echo "coordinator writes to $S3_ROOT_DIR"')


def test_synthesized_user_data_passes_shellcheck(user_data: str, tmp_path: Path) -> None:
    outer = tmp_path / "user-data.sh"
    outer.write_text(user_data)
    inner = tmp_path / "bootstrap.sh"
    inner.write_text(heredoc(user_data, "AWSCLI_UPLOADER_BOOTSTRAP"))
    for path in (outer, inner):
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
