"""An example stack: the simulation's spot instance, in a group of one that drains before
it goes, uploading with awscli-uploader."""

from __future__ import annotations

from collections.abc import Sequence

import jsii
from aws_cdk import CfnOutput, Duration, Environment, Stack, Tags, Token
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from constructs import Construct

from . import nag, render
from .cloudwatch_construct import UploaderCloudWatch
from .events_construct import InstanceEvents
from .group_construct import (
    DEFAULT_DRAIN_TIMEOUT,
    DEFAULT_INSTANCE_TYPES,
    DRAIN_HOOK_NAME,
    DrainingSpotGroup,
)
from .uploader_construct import AwscliUploader

DEFAULT_ROOT_DIR = "/var/lib/simulation/output/s3"
DEFAULT_DATA_VOLUME_GIB = 100
DATA_DEVICE = "/dev/sdf"
VOLUME_TAG = "awscli-uploader:group"  # on the data volume (and the instance): the group's name


@jsii.implements(ec2.IMachineImage)
class PinnedImage:
    """One AMI id, the same at every synth: a new image never replaces the instance."""

    def __init__(self, image_id: str) -> None:
        self.image_id = image_id

    def get_image(self, scope: Construct) -> ec2.MachineImageConfig:
        return ec2.MachineImageConfig(
            image_id=self.image_id,
            os_type=ec2.OperatingSystemType.LINUX,
            user_data=ec2.UserData.for_linux(),
        )


def default_image(stack: Stack, image_id: str | None) -> ec2.IMachineImage:
    """The image id given, else Amazon Linux 2023 looked up once and then read from
    cdk.context.json (commit it), never re-resolved at deploy."""
    if image_id is not None:
        if not render.is_image_id(image_id):
            raise render.InvalidSettingsError(f"image_id {image_id!r} is invalid: use ami-...")
        return PinnedImage(image_id)
    if Token.is_unresolved(stack.account) or Token.is_unresolved(stack.region):
        raise render.InvalidSettingsError(
            "awscli-uploader: the image must be pinned: give image_id (-c imageId=ami-...) "
            "or an account and region, so that the latest Amazon Linux 2023 is looked up "
            "once and kept in cdk.context.json"
        )
    return ec2.MachineImage.latest_amazon_linux2023(cached_in_context=True)


def _check_group_props(instance_types: Sequence[str], data_volume_gib: int) -> None:
    problems = []
    if isinstance(instance_types, str) or not instance_types:
        problems.append("instance_types must be a non-empty list of instance types")
    if isinstance(data_volume_gib, bool) or not isinstance(data_volume_gib, int):
        problems.append(f"data_volume_gib {data_volume_gib!r} is invalid: use whole GiB")
    elif not 1 <= data_volume_gib <= 16384:
        problems.append(f"data_volume_gib {data_volume_gib!r} is invalid: use 1-16384")
    if problems:
        raise render.InvalidSettingsError("awscli-uploader: " + "; ".join(problems))


class SpotInstancesStack(Stack):
    """One spot instance of the simulation in an Auto Scaling group, uploading its output.

    The group (capacity 1) launches from a launch template (IMDSv2 required) with spot
    capacity from `instance_types` (price-capacity-optimized, capacity rebalancing), so
    no spot request can outlive the stack. The backlog lives on its own EBS volume
    mounted at `root_dir`; a termination lifecycle hook holds every termination (a
    replacement by a rolling update, a scale-in, a rebalance) for up to `drain_timeout`
    while the daemon drains the backlog, and the daemon completes it. CloudFormation
    waits for the signal sent once the uploader's unit is active, before the
    coordinator's commands, which run as their own unit with `S3_ROOT_DIR` exported to
    `root_dir`. With `retain_data_volume` (the default) the data volume outlives its
    instance unless the daemon proved it empty: it sets the volume to be deleted with
    the instance just before it completes the drain hook, so only a volume whose drain
    did not finish (a spot interruption, a drain past its timeout) stays, tagged
    `VOLUME_TAG` = the group's name, for you to recover and delete.
    Without `vpc`, the stack makes a small VPC with public subnets only (no
    NAT gateway); without `subnet`, the group uses the VPC's public (else private)
    subnets, which must reach S3, the Auto Scaling API and the OS package mirrors.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket_names: Sequence[str],
        root_dir: str = DEFAULT_ROOT_DIR,
        interval: int = render.DEFAULT_INTERVAL,
        stability: float = render.DEFAULT_STABILITY,
        region: str | None = None,
        extra_flags: Sequence[str] = (),
        writer_group: str = render.DEFAULT_WRITER_GROUP,
        coordinator_commands: Sequence[str] = (),
        instance_types: Sequence[str] = DEFAULT_INSTANCE_TYPES,
        machine_image: ec2.IMachineImage | None = None,
        max_price: float | None = None,
        vpc: ec2.IVpc | None = None,
        subnet: ec2.ISubnet | None = None,
        wheel_path: str | None = None,
        image_id: str | None = None,
        kms_key_arns: Sequence[str] = (),
        session_manager: bool = False,
        cloudwatch: bool = True,
        data_volume_gib: int = DEFAULT_DATA_VOLUME_GIB,
        retain_data_volume: bool = True,
        drain_timeout: Duration = DEFAULT_DRAIN_TIMEOUT,
        alarm_topic: sns.ITopic | None = None,
        env: Environment | None = None,
        description: str | None = None,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            env=env,
            description=description
            or "A spot instance that uploads the simulation's output to S3 with awscli-uploader",
        )
        _check_group_props(instance_types, data_volume_gib)
        image = machine_image or default_image(self, image_id)  # before the wheel's build
        if vpc is None:
            vpc = ec2.Vpc(
                self,
                "Vpc",
                max_azs=2,
                nat_gateways=0,
                subnet_configuration=[
                    ec2.SubnetConfiguration(
                        name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24
                    )
                ],
            )
        subnets = ec2.SubnetSelection(
            subnets=[subnet] if subnet else (vpc.public_subnets or vpc.private_subnets)
        )

        self.role = iam.Role(
            self,
            "InstanceRole",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            description="awscli-uploader on the simulation's spot instances",
        )
        if session_manager:
            self.role.add_managed_policy(
                iam.ManagedPolicy.from_aws_managed_policy_name("AmazonSSMManagedInstanceCore")
            )
        self.instance_profile = iam.InstanceProfile(self, "InstanceProfile", role=self.role)
        self.user_data = ec2.UserData.for_linux()
        # A known name: the user data and the role's policy name the group without a
        # reference to it (the group depends on the launch template, so on the user data).
        self.group_name = f"{self.stack_name}-uploader"
        self.uploader = AwscliUploader(
            self,
            "Uploader",
            role=self.role,
            user_data=self.user_data,
            bucket_names=bucket_names,
            root_dir=root_dir,
            interval=interval,
            stability=stability,
            region=region,
            extra_flags=extra_flags,
            writer_group=writer_group,
            wheel_path=wheel_path,
            kms_key_arns=kms_key_arns,
            data_device=DATA_DEVICE,
            drain_hook=render.DrainHook(hook_name=DRAIN_HOOK_NAME, group_name=self.group_name),
        )
        self.cloudwatch = (
            UploaderCloudWatch(self, "CloudWatch", role=self.role, user_data=self.user_data)
            if cloudwatch
            else None
        )
        security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            allow_all_outbound=True,
            description="awscli-uploader spot instance: no inbound, outbound for S3 and packages",
        )
        self.launch_template = ec2.LaunchTemplate(
            self,
            "LaunchTemplate",
            machine_image=image,
            instance_profile=self.instance_profile,
            user_data=self.user_data,
            security_group=security_group,
            require_imdsv2=True,
            http_put_response_hop_limit=1,
            block_devices=[
                ec2.BlockDevice(
                    device_name=DATA_DEVICE,
                    volume=ec2.BlockDeviceVolume.ebs(
                        data_volume_gib,
                        volume_type=ec2.EbsDeviceVolumeType.GP3,
                        encrypted=True,
                        delete_on_termination=not retain_data_volume,
                    ),
                )
            ],
        )
        # Tags the instance and its volumes: a retained data volume is found by it.
        Tags.of(self.launch_template).add(VOLUME_TAG, self.group_name)
        self.spot_group = DrainingSpotGroup(
            self,
            "Group",
            launch_template=self.launch_template,
            vpc=vpc,
            vpc_subnets=subnets,
            group_name=self.group_name,
            instance_types=instance_types,
            max_price=max_price,
            drain_timeout=drain_timeout,
        )

        self._signal_when_the_uploader_is_up()
        if coordinator_commands:
            self.user_data.add_commands(
                *render.coordinator_commands(self.uploader.root_dir, coordinator_commands)
            )

        self.alarms: tuple[cw.Alarm, ...] = ()
        if self.cloudwatch is not None:
            self.alarms = self.cloudwatch.add_alarms(
                dimensions={"AutoScalingGroupName": self.group_name}, topic=alarm_topic
            )
        self.events = (
            InstanceEvents(self, "Events", topic=alarm_topic, group_name=self.group_name)
            if alarm_topic is not None
            else None
        )
        nag.acknowledge(self)

        CfnOutput(self, "AutoScalingGroupName", value=self.group_name)
        CfnOutput(self, "InstanceRoleArn", value=self.role.role_arn)
        CfnOutput(self, "RootDir", value=root_dir)

    def _cfn_signal(self, exit_code: str) -> list[str]:
        group = self.spot_group.signal_resource
        return [
            "if [ ! -x /opt/aws/bin/cfn-signal ] && command -v dnf >/dev/null 2>&1; then "
            "dnf install -y -q aws-cfn-bootstrap || true; fi",
            f"/opt/aws/bin/cfn-signal --exit-code {exit_code} --stack {self.stack_name} "
            f"--resource {self.get_logical_id(group)} --region {self.region} || true",
        ]

    def _signal_when_the_uploader_is_up(self) -> None:
        """cfn-signal, once: success when the uploader's unit is active (after both
        bootstraps, before the coordinator), failure from the exit trap (at the top of the
        user data) when anything before that fails. The unit is Type=notify: `systemctl
        start` returned only once the daemon said READY=1 (it holds the root's lock and
        checked its access), and "active" means it still runs. CloudFormation's creation
        and rolling update wait for it, not for the coordinator."""
        self.user_data.add_on_exit_commands(
            'if [ -z "${AWSCLI_UPLOADER_SIGNALLED:-}" ]; then',
            *self._cfn_signal('"$exitCode"'),
            "fi",
        )
        self.user_data.add_commands(
            f"systemctl is-active --quiet {render.SERVICE_NAME} || exit 1",
            *self._cfn_signal("0"),
            "AWSCLI_UPLOADER_SIGNALLED=1",
        )
