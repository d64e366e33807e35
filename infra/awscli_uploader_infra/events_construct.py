"""EventBridge rules that tell an SNS topic what EC2 and Auto Scaling say about the instance."""

from __future__ import annotations

from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_sns as sns
from constructs import Construct

SPOT_EVENTS = ("EC2 Spot Instance Interruption Warning", "EC2 Instance Rebalance Recommendation")
GROUP_EVENTS = ("EC2 Instance Launch Unsuccessful", "EC2 Instance Terminate Unsuccessful")


class InstanceEvents(Construct):
    """Sends spot interruption warnings and rebalance recommendations, and the group's
    failed launches and terminations, to `topic`.

    EC2's spot events carry only an instance id, so their rule matches every spot
    instance of the account and region; the group's events match `group_name` alone.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, topic: sns.ITopic, group_name: str
    ) -> None:
        super().__init__(scope, construct_id)
        self.spot_rule = events.Rule(
            self,
            "Spot",
            description="awscli-uploader: EC2 spot interruption warnings and rebalances",
            event_pattern=events.EventPattern(source=["aws.ec2"], detail_type=list(SPOT_EVENTS)),
            targets=[targets.SnsTopic(topic)],
        )
        self.group_rule = events.Rule(
            self,
            "Group",
            description="awscli-uploader: the group could not launch or terminate an instance",
            event_pattern=events.EventPattern(
                source=["aws.autoscaling"],
                detail_type=list(GROUP_EVENTS),
                detail={"AutoScalingGroupName": [group_name]},
            ),
            targets=[targets.SnsTopic(topic)],
        )
