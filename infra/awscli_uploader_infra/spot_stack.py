"""An example stack: one EC2 spot instance of the simulation, uploading with awscli-uploader."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

import jsii
from aws_cdk import CfnCreationPolicy, CfnOutput, CfnResourceSignal, Environment, Stack, Token
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from constructs import Construct

from . import nag, render
from .cloudwatch_construct import UploaderCloudWatch
from .uploader_construct import AwscliUploader

DEFAULT_ROOT_DIR = "/var/lib/simulation/output/s3"
DEFAULT_INSTANCE_TYPE = "c6i.large"
DEFAULT_INTERRUPTION = "stop"
INTERRUPTIONS = {
    # a persistent request: the instance stops, its EBS volume and backlog stay, and it
    # starts again (the enabled unit drains the backlog) when capacity is back
    "stop": (ec2.SpotRequestType.PERSISTENT, ec2.SpotInstanceInterruption.STOP),
    "terminate": (ec2.SpotRequestType.ONE_TIME, ec2.SpotInstanceInterruption.TERMINATE),
}
BOOTSTRAP_TIMEOUT = "PT20M"  # CloudFormation waits this long for cfn-signal


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


class SpotInstancesStack(Stack):
    """A spot instance from a launch template (IMDSv2 required) that runs the uploader.

    `root_dir` is the one setting shared by the uploader and the coordinator:
    the uploader scans it, and `coordinator_commands` run after the uploader is
    set up with `S3_ROOT_DIR` exported to the same path. Without `vpc`, the
    stack makes a small VPC with public subnets only (no NAT gateway); without
    `subnet`, the instance goes into the VPC's first public (else private) subnet,
    which must reach S3 and the OS package mirrors (the asset carries every wheel).
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
        instance_type: str = DEFAULT_INSTANCE_TYPE,
        machine_image: ec2.IMachineImage | None = None,
        max_price: float | None = None,
        vpc: ec2.IVpc | None = None,
        subnet: ec2.ISubnet | None = None,
        wheel_path: str | None = None,
        image_id: str | None = None,
        interruption: str = DEFAULT_INTERRUPTION,
        kms_key_arns: Sequence[str] = (),
        session_manager: bool = False,
        cloudwatch: bool = True,
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
        if interruption not in INTERRUPTIONS:
            raise render.InvalidSettingsError(
                f"interruption {interruption!r} is invalid: use one of {sorted(INTERRUPTIONS)}"
            )
        request_type, behaviour = INTERRUPTIONS[interruption]
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
        if subnet is None:
            subnet = (vpc.public_subnets or vpc.private_subnets)[0]

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
        )
        self.cloudwatch = (
            UploaderCloudWatch(self, "CloudWatch", role=self.role, user_data=self.user_data)
            if cloudwatch
            else None
        )
        if coordinator_commands:
            self.user_data.add_commands(
                f"export S3_ROOT_DIR={shlex.quote(self.uploader.root_dir)}",
                *coordinator_commands,
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
            machine_image=machine_image or default_image(self, image_id),
            instance_type=ec2.InstanceType(instance_type),
            instance_profile=self.instance_profile,
            user_data=self.user_data,
            security_group=security_group,
            require_imdsv2=True,
            http_put_response_hop_limit=1,
            spot_options=ec2.LaunchTemplateSpotOptions(
                request_type=request_type,
                interruption_behavior=behaviour,
                max_price=max_price,
            ),
        )
        self.instance = ec2.CfnInstance(
            self,
            "Instance",
            launch_template=ec2.CfnInstance.LaunchTemplateSpecificationProperty(
                launch_template_id=self.launch_template.launch_template_id,
                version=self.launch_template.latest_version_number,
            ),
            subnet_id=subnet.subnet_id,
        )
        self._signal_bootstrap()
        if self.cloudwatch is not None:
            self.cloudwatch.add_alarms(self.instance.ref)
        nag.acknowledge(self)

        CfnOutput(self, "InstanceId", value=self.instance.ref)
        CfnOutput(self, "InstanceRoleArn", value=self.role.role_arn)
        CfnOutput(self, "RootDir", value=root_dir)

    def _signal_bootstrap(self) -> None:
        """CloudFormation waits for the user data's exit code (cfn-signal from its exit
        trap): a failed bootstrap fails the deployment instead of passing unseen."""
        self.instance.cfn_options.creation_policy = CfnCreationPolicy(
            resource_signal=CfnResourceSignal(count=1, timeout=BOOTSTRAP_TIMEOUT)
        )
        self.user_data.add_on_exit_commands(
            "if [ ! -x /opt/aws/bin/cfn-signal ] && command -v dnf >/dev/null 2>&1; then "
            "dnf install -y -q aws-cfn-bootstrap || true; fi",
            '/opt/aws/bin/cfn-signal --exit-code "$exitCode" '
            f"--stack {self.stack_name} --resource {self.get_logical_id(self.instance)} "
            f"--region {self.region} || true",
        )
