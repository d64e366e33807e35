"""Logs and metrics that leave the box: a log group, metrics in one namespace, alarms and
a dashboard, with IAM on exactly that log group and that namespace."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Token
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from . import render
from .cloudwatch_render import CLOUDWATCH_PATH, DEFAULT_NAMESPACE, render_cloudwatch

DEFAULT_RETENTION = logs.RetentionDays.ONE_MONTH
DEFAULT_BACKLOG_AGE_ALARM = Duration.hours(1)
_DASHBOARD = (
    ("Backlog: files", "BacklogFiles", "Maximum", "Count"),
    ("Backlog: bytes", "BacklogBytes", "Maximum", "Bytes"),
    ("Backlog: oldest file age", "BacklogOldestAgeSeconds", "Maximum", "Seconds"),
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
        script = render_cloudwatch(
            log_group=self.log_group.log_group_name,
            namespace=namespace,
            install_dir=install_dir,
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

    def metric(self, name: str, instance_id: str, statistic: str) -> cw.Metric:
        return cw.Metric(
            namespace=self.namespace,
            metric_name=name,
            dimensions_map={"InstanceId": instance_id},
            statistic=statistic,
            period=Duration.minutes(5),
        )

    def add_alarms(
        self, instance_id: str, *, backlog_age: Duration = DEFAULT_BACKLOG_AGE_ALARM
    ) -> tuple[cw.Alarm, cw.Alarm]:
        """An alarm when the oldest waiting file is older than `backlog_age`, and one when
        the credentials fail (or nothing is reported: nothing proves they work)."""
        age = self.metric("BacklogOldestAgeSeconds", instance_id, "Maximum").create_alarm(
            self,
            "BacklogAgeAlarm",
            alarm_description="awscli-uploader: files wait longer than they should",
            threshold=backlog_age.to_seconds(),
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=3,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        credentials = self.metric("CredentialsValid", instance_id, "Minimum").create_alarm(
            self,
            "CredentialsAlarm",
            alarm_description="awscli-uploader: AWS credentials invalid, or no metrics at all",
            threshold=1,
            comparison_operator=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
            evaluation_periods=2,
            treat_missing_data=cw.TreatMissingData.BREACHING,
        )
        return age, credentials
