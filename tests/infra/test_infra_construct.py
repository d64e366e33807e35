"""AwscliUploader in a bare stack: the role's policy and the user data it adds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from awscli_uploader_infra import render
from infra_helpers import TOKEN, heredoc, only_resource, require_aws_cdk

if TYPE_CHECKING:
    from aws_cdk import Stack
    from aws_cdk import aws_ec2 as ec2
    from aws_cdk import aws_iam as iam
    from aws_cdk.assertions import Template

# aws_cdk (jsii: a node process, seconds of CPU) is imported by the functions that use it,
# not by every xdist worker when it collects
require_aws_cdk()

# one worker loads the jsii assembly of aws-cdk-lib (seconds of node CPU) for all such modules
pytestmark = pytest.mark.xdist_group("jsii")

BUCKETS = ("sim-results", "sim.logs-2")


def bare_stack() -> tuple[Stack, iam.Role, ec2.UserData]:
    from aws_cdk import App, Stack
    from aws_cdk import aws_ec2 as ec2
    from aws_cdk import aws_iam as iam

    stack = Stack(App(), "Existing")
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"))
    user_data = ec2.UserData.for_linux()
    ec2.LaunchTemplate(stack, "LaunchTemplate", user_data=user_data, role=role)
    return stack, role, user_data


@pytest.fixture(scope="module")
def template(dummy_asset: Path) -> Template:
    from aws_cdk.assertions import Template
    from awscli_uploader_infra import AwscliUploader

    stack, role, user_data = bare_stack()
    user_data.add_commands("echo existing commands stay first")
    AwscliUploader(
        stack,
        "Uploader",
        role=role,
        user_data=user_data,
        bucket_names=BUCKETS,
        root_dir="/data/output/s3",
        interval=30,
        stability=5,
        region="eu-central-1",
        extra_flags=["--dry-run"],
        writer_group="simulation",
        wheel_path=str(dummy_asset),
    )
    return Template.from_stack(stack)


@pytest.fixture(scope="module")
def user_data(template: Template) -> str:
    _, launch_template = only_resource(template, "AWS::EC2::LaunchTemplate")
    parts = launch_template["Properties"]["LaunchTemplateData"]["UserData"]["Fn::Base64"]
    separator, pieces = parts["Fn::Join"]
    return str(separator).join(p if isinstance(p, str) else TOKEN for p in pieces)


def statements(template: Template) -> list[dict[str, Any]]:
    _, policy = only_resource(template, "AWS::IAM::Policy")
    found: list[dict[str, Any]] = policy["Properties"]["PolicyDocument"]["Statement"]
    return found


def test_role_gets_the_four_actions_on_the_buckets_and_read_on_the_wheel_only(
    template: Template,
) -> None:
    from aws_cdk.assertions import Match

    role_id, _ = only_resource(template, "AWS::IAM::Role")
    template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "Roles": [{"Ref": role_id}],
            "PolicyDocument": {
                "Statement": Match.array_equals(
                    [
                        {
                            "Sid": "AwscliUploaderWheelAsset",
                            "Effect": "Allow",
                            "Action": "s3:GetObject",
                            "Resource": Match.object_like({"Fn::Join": Match.any_value()}),
                        },
                        {
                            "Sid": "AwscliUploaderObjects",
                            "Effect": "Allow",
                            "Action": ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"],
                            "Resource": ["arn:aws:s3:::sim-results/*", "arn:aws:s3:::sim.logs-2/*"],
                        },
                        {
                            "Sid": "AwscliUploaderListBucket",
                            "Effect": "Allow",
                            "Action": ["s3:ListBucket", "s3:ListBucketMultipartUploads"],
                            "Resource": ["arn:aws:s3:::sim-results", "arn:aws:s3:::sim.logs-2"],
                        },
                    ]
                )
            },
        },
    )


def test_wheel_grant_is_the_one_asset_object(template: Template) -> None:
    wheel = next(s for s in statements(template) if s["Sid"] == "AwscliUploaderWheelAsset")
    arn = json.dumps(wheel["Resource"])
    assert "cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}" in arn
    assert arn.endswith('.zip"]]}')  # the asset directory, zipped


def test_no_policy_is_wider_than_its_buckets(template: Template) -> None:
    for body in template.find_resources("AWS::IAM::Policy").values():
        for statement in body["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"]
            actions = [actions] if isinstance(actions, str) else actions
            resources = statement["Resource"]
            resources = resources if isinstance(resources, list) else [resources]
            assert statement["Effect"] == "Allow"
            assert not any(action in ("*", "s3:*") for action in actions), statement
            assert all(action.startswith("s3:") for action in actions), statement
            assert "*" not in resources, statement
            assert "NotResource" not in statement and "NotAction" not in statement


def test_user_data_writes_the_unit_then_enables_and_starts_it(user_data: str) -> None:
    bootstrap = heredoc(user_data, "AWSCLI_UPLOADER_BOOTSTRAP")
    unit = render.unit_text(bootstrap)
    assert "ExecStart=/opt/awscli-uploader/bin/awscli-uploader $AWSCLI_UPLOADER_FLAGS" in unit
    assert "KillSignal=SIGTERM" in unit
    assert "Restart=on-failure" in unit
    assert bootstrap.rstrip().endswith("systemctl enable --now awscli-uploader.service")
    assert user_data.rstrip().endswith(f"{render.BOOTSTRAP_PATH} || exit 1")
    assert user_data.index("echo existing commands stay first") < user_data.index(bootstrap)


@pytest.mark.parametrize(
    "line",
    [
        "ROOT_DIR='/data/output/s3'",
        "INTERVAL='30'",
        "STABILITY='5'",
        "REGION='eu-central-1'",
        "EXTRA_FLAGS='--dry-run'",
        "WRITER_GROUP='simulation'",
        "WHEEL_NAME='awscli_uploader-0.0.0-py3-none-any.whl'",
        f"WHEEL_S3_URL='{TOKEN}'",
        f"ASSET_REGION='{TOKEN}'",
    ],
)
def test_user_data_carries_the_props(user_data: str, line: str) -> None:
    assert f"\n{line}\n" in user_data


def test_region_defaults_to_the_stack_region(dummy_asset: Path) -> None:
    from awscli_uploader_infra import AwscliUploader

    stack, role, user_data = bare_stack()
    AwscliUploader(
        stack,
        "Uploader",
        role=role,
        user_data=user_data,
        bucket_names=["sim-results"],
        root_dir="/data/output/s3",
        wheel_path=str(dummy_asset),
    )
    rendered = json.dumps(stack.resolve(user_data.render()))
    assert 'REGION=\'", {"Ref": "AWS::Region"}' in rendered


def test_buckets_of_the_same_stack_can_be_passed_as_tokens(dummy_asset: Path) -> None:
    from aws_cdk import aws_s3 as s3
    from aws_cdk.assertions import Match, Template
    from awscli_uploader_infra import AwscliUploader

    stack, role, user_data = bare_stack()
    bucket = s3.Bucket(stack, "Results")
    AwscliUploader(
        stack,
        "Uploader",
        role=role,
        user_data=user_data,
        bucket_names=[bucket.bucket_name],
        root_dir="/data/output/s3",
        wheel_path=str(dummy_asset),
    )
    bucket_id, _ = only_resource(Template.from_stack(stack), "AWS::S3::Bucket")
    Template.from_stack(stack).has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        {
                            "Sid": "AwscliUploaderListBucket",
                            "Effect": "Allow",
                            "Action": ["s3:ListBucket", "s3:ListBucketMultipartUploads"],
                            "Resource": {"Fn::Join": ["", ["arn:aws:s3:::", {"Ref": bucket_id}]]},
                        }
                    ]
                )
            }
        },
    )


def test_an_imported_role_gets_its_own_policy(dummy_asset: Path) -> None:
    from aws_cdk import App, Stack
    from aws_cdk import aws_ec2 as ec2
    from aws_cdk import aws_iam as iam
    from aws_cdk.assertions import Template
    from awscli_uploader_infra import AwscliUploader

    stack = Stack(App(), "Existing")
    role = iam.Role.from_role_name(stack, "Role", "simulation-instance-role")
    AwscliUploader(
        stack,
        "Uploader",
        role=role,
        user_data=ec2.UserData.for_linux(),
        bucket_names=["sim-results"],
        root_dir="/data/output/s3",
        wheel_path=str(dummy_asset),
    )
    Template.from_stack(stack).has_resource_properties(
        "AWS::IAM::Policy", {"Roles": ["simulation-instance-role"]}
    )


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"bucket_names": []}, "bucket_names must be a non-empty list"),
        ({"bucket_names": "sim-results"}, "bucket_names must be a non-empty list"),
        ({"bucket_names": ["Sim_Results"]}, "bucket name 'Sim_Results' is invalid"),
        ({"interval": 0}, "interval 0 is invalid: use a positive number"),
        ({"root_dir": "output/s3"}, "root_dir 'output/s3' is invalid"),
        ({"region": "mars-1"}, "region 'mars-1' is invalid"),
    ],
)
def test_invalid_props_fail_at_synth_with_a_clear_error(
    props: dict[str, Any], message: str, dummy_asset: Path
) -> None:
    from awscli_uploader_infra import AwscliUploader

    stack, role, user_data = bare_stack()
    arguments: dict[str, Any] = {
        "bucket_names": ["sim-results"],
        "root_dir": "/data/output/s3",
        "wheel_path": str(dummy_asset),
        **props,
    }
    with pytest.raises(render.InvalidSettingsError, match=message):
        AwscliUploader(stack, "Uploader", role=role, user_data=user_data, **arguments)


def test_a_missing_prebuilt_wheel_is_reported(tmp_path: Path) -> None:
    from awscli_uploader_infra import AwscliUploader

    stack, role, user_data = bare_stack()
    with pytest.raises(FileNotFoundError, match=r"is not a \.whl file"):
        AwscliUploader(
            stack,
            "Uploader",
            role=role,
            user_data=user_data,
            bucket_names=["sim-results"],
            root_dir="/data/output/s3",
            wheel_path=str(tmp_path / "missing.whl"),
        )


def test_props_are_keyword_only() -> None:
    from awscli_uploader_infra import AwscliUploader

    stack, role, user_data = bare_stack()
    with pytest.raises(TypeError):
        AwscliUploader(stack, "Uploader", role, user_data)
