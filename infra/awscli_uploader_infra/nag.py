"""The cdk-nag AwsSolutions findings SpotInstancesStack accepts, each with its reason.

Everything else the pack reports is fixed in the stack; a test runs the pack.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from cdk_nag import NagPackSuppression, NagSuppressions

SSM_POLICY = "Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore"

REASONS: dict[str, tuple[str, list[Any] | None]] = {
    "AwsSolutions-IAM5": (
        "Object keys are the simulation's output, unknown in advance (BUCKET/* of the named "
        "buckets only); PutMetricData has no resources, a namespace condition bounds it.",
        [{"regex": "/^Resource::arn:aws:s3:::[a-z0-9.-]+\\/\\*$/g"}, "Resource::*"],
    ),
    "AwsSolutions-IAM4": (
        "AmazonSSMManagedInstanceCore is AWS's own minimum for Session Manager, opt-in "
        "(session_manager=True).",
        [SSM_POLICY],
    ),
    "AwsSolutions-EC26": (
        "The root volume follows the account's EBS encryption by default; turn that on "
        "(ec2 enable-ebs-encryption-by-default).",
        None,
    ),
    "AwsSolutions-EC28": (
        "One-minute instance metrics cost extra and say nothing about the upload backlog.",
        None,
    ),
    "AwsSolutions-EC29": (
        "Spot instances can't have termination protection; the stop interruption keeps "
        "the volume instead.",
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
