"""The cdk-nag AwsSolutions findings SpotInstancesStack accepts, each with its reason.

Everything else the pack reports is fixed in the stack; a test runs the pack.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from cdk_nag import NagPackSuppression, NagSuppressions

GROUP_ARN = (
    "/^Resource::arn:<AWS::Partition>:autoscaling:<AWS::Region>:<AWS::AccountId>:"
    "autoScalingGroup:\\*:autoScalingGroupName\\/[A-Za-z0-9._-]+$/g"
)
INSTANCE_ARN = "Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:instance/*"
SSM_POLICY = "Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore"

REASONS: dict[str, tuple[str, list[Any] | None]] = {
    "AwsSolutions-IAM5": (
        "Keys are unknown in advance (BUCKET/* of named buckets); PutMetricData is bounded by "
        "a namespace condition; the group ARN's * is its UUID; instance/* by the group's tag.",
        [
            {"regex": "/^Resource::arn:aws:s3:::[a-z0-9.-]+\\/\\*$/g"},
            "Resource::*",
            {"regex": GROUP_ARN},
            INSTANCE_ARN,
        ],
    ),
    "AwsSolutions-AS3": (
        "A group of one instance does not scale; failed launches and terminations go to "
        "the alarm topic through EventBridge (alarm_topic).",
        None,
    ),
    "AwsSolutions-IAM4": (
        "AmazonSSMManagedInstanceCore is AWS's own minimum for Session Manager, opt-in "
        "(session_manager=True).",
        [SSM_POLICY],
    ),
    "AwsSolutions-EC26": (
        "The data volume is encrypted; the image's root volume follows the account's EBS "
        "encryption by default; turn that on (ec2 enable-ebs-encryption-by-default).",
        None,
    ),
    "AwsSolutions-VPC7": (
        "The example VPC has no inbound path at all; bring your own VPC (vpc=) with flow "
        "logs in production.",
        None,
    ),
}


def acknowledge(stack: Stack) -> None:
    """Record the accepted findings, with their reasons, in the stack's metadata."""
    NagSuppressions.add_stack_suppressions(
        stack,
        [
            NagPackSuppression(id=rule, reason=reason, applies_to=applies_to)
            for rule, (reason, applies_to) in REASONS.items()
        ],
    )
