"""An example stack: one EC2 spot instance of the simulation, uploading with awscli-uploader."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from aws_cdk import CfnOutput, Environment, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from constructs import Construct

from . import render
from .uploader_construct import AwscliUploader

DEFAULT_ROOT_DIR = "/var/lib/simulation/output/s3"
DEFAULT_INSTANCE_TYPE = "c6i.large"


class SpotInstancesStack(Stack):
    """A spot instance from a launch template (IMDSv2 required) that runs the uploader.

    `root_dir` is the one setting shared by the uploader and the coordinator:
    the uploader scans it, and `coordinator_commands` run after the uploader is
    set up with `S3_ROOT_DIR` exported to the same path. Without `vpc`, the
    stack makes a small VPC with public subnets only (no NAT gateway); without
    `subnet`, the instance goes into the VPC's first public (else private) subnet,
    which must reach S3, PyPI and the OS package mirrors.
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
            machine_image=machine_image or ec2.MachineImage.latest_amazon_linux2023(),
            instance_type=ec2.InstanceType(instance_type),
            instance_profile=self.instance_profile,
            user_data=self.user_data,
            security_group=security_group,
            require_imdsv2=True,
            http_put_response_hop_limit=1,
            spot_options=ec2.LaunchTemplateSpotOptions(
                request_type=ec2.SpotRequestType.ONE_TIME,
                interruption_behavior=ec2.SpotInstanceInterruption.TERMINATE,
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

        CfnOutput(self, "InstanceId", value=self.instance.ref)
        CfnOutput(self, "InstanceRoleArn", value=self.role.role_arn)
        CfnOutput(self, "RootDir", value=root_dir)
