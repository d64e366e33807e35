"""Logs and metrics that leave the box: a log group, metrics in one namespace, alarms and
a dashboard, with IAM on exactly that log group and that namespace."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, RemovalPolicy, Stack, Token
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sns as sns
from constructs import Construct

from . import render
from .cloudwatch_render import (
    CLOUDWATCH_PATH,
    DEFAULT_NAMESPACE,
    METRICS_SCRIPT,
    render_cloudwatch,
)

DEFAULT_RETENTION = logs.RetentionDays.ONE_MONTH
DEFAULT_BACKLOG_AGE_ALARM = Duration.hours(1)
DEFAULT_SCAN_AGE_ALARM = Duration.hours(1)
_DASHBOARD = (
    ("Backlog: files", "BacklogFiles", "Maximum", "Count"),
    ("Backlog: bytes", "BacklogBytes", "Maximum", "Bytes"),
    ("Backlog: oldest file age", "BacklogOldestAgeSeconds", "Maximum", "Seconds"),
    ("Since the last scan started", "ScanAgeSeconds", "Maximum", "Seconds"),
    ("Uploaded bytes per minute", "UploadedBytes", "Sum", "Bytes"),
    ("Failed files per instance", "FailedFiles", "Sum", "Count"),
    ("Credentials valid (1 = yes)", "CredentialsValid", "Minimum", "None"),
)


class UploaderCloudWatch(Construct):
    """Ships the daemon's JSON log lines to `log_group` (CloudWatch agent) and its metrics
    file to `namespace` every minute, on every instance that runs `user_data` after the
    uploader's bootstrap; a dashboard shows every instance of the namespace."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        role: iam.IRole,
        user_data: ec2.UserData,
        namespace: str = DEFAULT_NAMESPACE,
        retention: logs.RetentionDays = DEFAULT_RETENTION,
        install_dir: str = render.DEFAULT_INSTALL_DIR,
    ) -> None:
        super().__init__(scope, construct_id)
        self.namespace = namespace
        self.alarms: tuple[cw.Alarm, ...] = ()
        self.log_group = logs.LogGroup(
            self, "Logs", retention=retention, removal_policy=RemovalPolicy.RETAIN
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="AwscliUploaderLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                resources=[self.log_group.log_group_arn],
            )
        )
        # PutMetricData has no resource-level permissions: the namespace condition bounds it.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="AwscliUploaderMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": namespace}},
            )
        )
        # The publisher is its own asset (one file), not text in the 16 KB of user data.
        self.publisher_asset = s3_assets.Asset(self, "Publisher", path=str(METRICS_SCRIPT))
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="AwscliUploaderPublisherAsset",
                actions=["s3:GetObject"],
                resources=[
                    self.publisher_asset.bucket.arn_for_objects(self.publisher_asset.s3_object_key)
                ],
            )
        )
        script = render_cloudwatch(
            log_group=self.log_group.log_group_name,
            namespace=namespace,
            install_dir=install_dir,
            publisher_s3_url=self.publisher_asset.s3_object_url,
            asset_region=Stack.of(self).region,
            is_token=Token.is_unresolved,
        )
        user_data.add_commands(
            *render.embed_commands(
                script, path=CLOUDWATCH_PATH, delimiter="AWSCLI_UPLOADER_CLOUDWATCH"
            )
        )
        self.dashboard = cw.Dashboard(self, "Dashboard")
        self.dashboard.add_widgets(*[self._graph(*spec) for spec in _DASHBOARD])

    def _graph(self, title: str, metric: str, statistic: str, unit: str) -> cw.GraphWidget:
        search = (
            f"SEARCH('{{{self.namespace},InstanceId}} MetricName=\"{metric}\"', '{statistic}', 60)"
        )
        return cw.GraphWidget(
            title=title,
            left=[cw.MathExpression(expression=search, label="", period=Duration.minutes(1))],
            left_y_axis=cw.YAxisProps(label=unit, show_units=False),
            width=8,
        )

    def metric(self, name: str, dimensions: Mapping[str, str], statistic: str) -> cw.Metric:
        return cw.Metric(
            namespace=self.namespace,
            metric_name=name,
            dimensions_map=dict(dimensions),
            statistic=statistic,
            period=Duration.minutes(5),
        )

    def add_alarms(
        self,
        *,
        dimensions: Mapping[str, str],
        topic: sns.ITopic | None = None,
        backlog_age: Duration = DEFAULT_BACKLOG_AGE_ALARM,
        scan_age: Duration = DEFAULT_SCAN_AGE_ALARM,
    ) -> tuple[cw.Alarm, ...]:
        """The alarms, once (also in `.alarms`), with alarm and OK actions to `topic`:
        no scan has started for `scan_age` (a stuck scan, a crash loop, or no metrics at
        all: a stopped instance), the oldest waiting file is older than `backlog_age`,
        and the credentials fail (or nothing is reported: nothing proves they work).
        More actions go on `.alarms`; a second call is an error, not a second set."""
        if self.alarms:
            raise ValueError(
                "the alarms exist already: add actions with alarm.add_alarm_action on .alarms"
            )
        scan = self.metric("ScanAgeSeconds", dimensions, "Maximum").create_alarm(
            self,
            "ScanAgeAlarm",
            alarm_description="awscli-uploader: no scan started for too long, or no metrics",
            threshold=scan_age.to_seconds(),
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=3,
            treat_missing_data=cw.TreatMissingData.BREACHING,
        )
        age = self.metric("BacklogOldestAgeSeconds", dimensions, "Maximum").create_alarm(
            self,
            "BacklogAgeAlarm",
            alarm_description="awscli-uploader: files wait longer than they should",
            threshold=backlog_age.to_seconds(),
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=3,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        credentials = self.metric("CredentialsValid", dimensions, "Minimum").create_alarm(
            self,
            "CredentialsAlarm",
            alarm_description="awscli-uploader: AWS credentials invalid",
            threshold=1,
            comparison_operator=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
            evaluation_periods=2,
            # no data at all (a replacement's gap, a stopped instance) is the scan-age alarm's
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        self.alarms = (scan, age, credentials)
        if topic is not None:
            for alarm in self.alarms:
                alarm.add_alarm_action(cw_actions.SnsAction(topic))
                alarm.add_ok_action(cw_actions.SnsAction(topic))
        return self.alarms
