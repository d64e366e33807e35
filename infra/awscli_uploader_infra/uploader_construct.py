"""A construct that lets an existing instance role and user data run awscli-uploader."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import ArnFormat, Stack, Token
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from . import render
from .wheel import daemon_wheel, resolve_asset


class AwscliUploader(Construct):
    """Grants `role` least privilege on the buckets and makes `user_data` run the daemon.

    The role may put, read back, list and abort multipart uploads in exactly
    `bucket_names`, use exactly `kms_key_arns` (SSE-KMS buckets with customer
    keys), and read the one S3 object (a zip) that holds the package's wheel and its
    dependencies' pinned wheels. The user data installs them into a venv with
    `pip install --no-index`, makes sure the AWS CLI v2 is there, and enables a
    systemd service that uploads `root_dir/<bucket>/<key>` every `interval`
    seconds. Members of `writer_group` (the coordinator) may write `root_dir`.

    With `data_device` (e.g. "/dev/sdf", a volume of the launch template's block device
    mappings) the user data formats that volume when blank and mounts it at `root_dir`,
    so the backlog can't fill the OS disk. With `drain_hook` the daemon learns the
    termination lifecycle hook and group it completes after draining (written to the
    environment file), and the role may complete and heartbeat it on that group only;
    with both, the daemon also sets the data volume to be deleted with its instance
    once the drain is complete (so a launch template may keep it by default), which the
    role may do on the instances of that group only.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        role: iam.IRole,
        user_data: ec2.UserData,
        bucket_names: Sequence[str],
        root_dir: str,
        interval: int = render.DEFAULT_INTERVAL,
        stability: float = render.DEFAULT_STABILITY,
        region: str | None = None,
        extra_flags: Sequence[str] = (),
        writer_group: str = render.DEFAULT_WRITER_GROUP,
        python: str = render.DEFAULT_PYTHON,
        install_dir: str = render.DEFAULT_INSTALL_DIR,
        wheel_path: str | None = None,
        kms_key_arns: Sequence[str] = (),
        data_device: str | None = None,
        drain_hook: render.DrainHook | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.settings = render.UploaderSettings(
            bucket_names=tuple(bucket_names) if not isinstance(bucket_names, str) else (),
            root_dir=root_dir,
            region=stack.region if region is None else region,
            interval=interval,
            stability=stability,
            writer_group=writer_group,
            extra_flags=tuple(extra_flags),
            python=python,
            install_dir=install_dir,
            kms_key_arns=tuple(kms_key_arns),
            data_device=data_device or "",
            drain_hook=drain_hook,
        )
        render.validate(self.settings, is_token=Token.is_unresolved)

        # A directory asset (one zip in S3): the package's wheel and its dependencies'.
        asset_dir = resolve_asset(wheel_path)
        self.wheel_asset = s3_assets.Asset(self, "Wheel", path=str(asset_dir))
        # Only the one object, not the whole bootstrap bucket that asset.grant_read opens.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="AwscliUploaderWheelAsset",
                actions=["s3:GetObject"],
                resources=[self.wheel_asset.bucket.arn_for_objects(self.wheel_asset.s3_object_key)],
            )
        )
        for statement in render.policy_statements(
            self.settings.bucket_names, self.settings.kms_key_arns
        ):
            role.add_to_principal_policy(iam.PolicyStatement.from_json(statement))
        if drain_hook is not None:
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid="AwscliUploaderLifecycle",
                    actions=[
                        "autoscaling:CompleteLifecycleAction",
                        "autoscaling:RecordLifecycleActionHeartbeat",
                    ],
                    resources=[
                        stack.format_arn(
                            service="autoscaling",
                            resource="autoScalingGroup",
                            resource_name=f"*:autoScalingGroupName/{drain_hook.group_name}",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    ],
                )
            )
        if drain_hook is not None and data_device:
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid="AwscliUploaderReleaseVolume",
                    actions=["ec2:ModifyInstanceAttribute"],
                    resources=[
                        stack.format_arn(service="ec2", resource="instance", resource_name="*")
                    ],
                    conditions={
                        "StringEquals": {
                            "aws:ResourceTag/aws:autoscaling:groupName": drain_hook.group_name
                        }
                    },
                )
            )

        script = render.render_user_data(
            self.settings,
            render.WheelSource(
                s3_url=self.wheel_asset.s3_object_url,
                name=daemon_wheel(asset_dir).name,
                region=stack.region,
            ),
            is_token=Token.is_unresolved,
        )
        user_data.add_commands(*render.embed_commands(script))

    @property
    def root_dir(self) -> str:
        """The directory the coordinator writes `<bucket>/<key>` files into."""
        return self.settings.root_dir

    @property
    def service_name(self) -> str:
        return render.SERVICE_NAME

    @property
    def env_file(self) -> str:
        """The daemon's environment on the instance; holds S3_ROOT_DIR among others."""
        return render.ENV_FILE
