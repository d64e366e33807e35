"""An Auto Scaling group of one spot instance that drains before it is terminated."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

DEFAULT_INSTANCE_TYPES = ("c6i.large", "c6a.large", "c5.large", "c5a.large", "m6i.large")
DRAIN_HOOK_NAME = "awscli-uploader-drain"
DEFAULT_DRAIN_TIMEOUT = Duration.minutes(30)  # the hook's heartbeat timeout
SIGNAL_TIMEOUT = Duration.minutes(20)  # CloudFormation waits this long for cfn-signal


class DrainingSpotGroup(Construct):
    """One spot instance from `launch_template`, owned by a group named `group_name`.

    Spot capacity comes from the group, not from a request of the launch template:
    no on-demand, price-capacity-optimized over `instance_types`, capacity
    rebalancing. Every termination the group makes waits in a lifecycle hook
    (`DRAIN_HOOK_NAME`, up to `drain_timeout` between heartbeats, then CONTINUE) for
    the daemon to drain and complete it. The hook is a property of the group, not a
    resource of its own: CloudFormation deletes a resource that references the group
    before the group, so a stack deletion would remove the hook and then terminate the
    instance without a drain. Creation and a rolling update (one at a time, none kept in
    service) wait for one cfn-signal to the group.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        launch_template: ec2.ILaunchTemplate,
        vpc: ec2.IVpc,
        vpc_subnets: ec2.SubnetSelection,
        group_name: str,
        instance_types: Sequence[str] = DEFAULT_INSTANCE_TYPES,
        max_price: float | None = None,
        drain_timeout: Duration = DEFAULT_DRAIN_TIMEOUT,
    ) -> None:
        super().__init__(scope, construct_id)
        self.group_name = group_name
        self.hook_name = DRAIN_HOOK_NAME
        self.group = autoscaling.AutoScalingGroup(
            self,
            "Group",
            vpc=vpc,
            vpc_subnets=vpc_subnets,
            auto_scaling_group_name=group_name,
            min_capacity=1,
            max_capacity=1,
            mixed_instances_policy=autoscaling.MixedInstancesPolicy(
                launch_template=launch_template,
                launch_template_overrides=[
                    autoscaling.LaunchTemplateOverrides(instance_type=ec2.InstanceType(kind))
                    for kind in instance_types
                ],
                instances_distribution=autoscaling.InstancesDistribution(
                    on_demand_base_capacity=0,
                    on_demand_percentage_above_base_capacity=0,
                    spot_allocation_strategy=(
                        autoscaling.SpotAllocationStrategy.PRICE_CAPACITY_OPTIMIZED
                    ),
                    spot_max_price=None if max_price is None else str(max_price),
                ),
            ),
            capacity_rebalance=True,
            signals=autoscaling.Signals.wait_for_count(1, timeout=SIGNAL_TIMEOUT),
            update_policy=autoscaling.UpdatePolicy.rolling_update(
                max_batch_size=1, min_instances_in_service=0, wait_on_resource_signals=True
            ),
        )
        self.signal_resource.lifecycle_hook_specification_list = [
            autoscaling.CfnAutoScalingGroup.LifecycleHookSpecificationProperty(
                lifecycle_hook_name=DRAIN_HOOK_NAME,
                lifecycle_transition="autoscaling:EC2_INSTANCE_TERMINATING",
                heartbeat_timeout=int(drain_timeout.to_seconds()),
                default_result="CONTINUE",
            )
        ]

    @property
    def signal_resource(self) -> autoscaling.CfnAutoScalingGroup:
        """The resource cfn-signal names (its logical id) to tell CloudFormation."""
        resource = self.group.node.default_child
        assert isinstance(resource, autoscaling.CfnAutoScalingGroup)
        return resource
