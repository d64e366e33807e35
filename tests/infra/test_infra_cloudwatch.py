"""Logs and metrics that leave the box: the publisher against moto, the bootstrap script,
and the log group, IAM, alarms and dashboard in the stack."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from awscli_uploader_infra import cloudwatch_render
from fake_imds import ImdsState, fake_imds
from helpers import REGION, REPO, Moto
from infra_helpers import heredoc, only_resource, require_aws_cdk, shellcheck, user_data_text

from awscli_uploader.model import NS, Count
from awscli_uploader.ops.backlog import Backlog
from awscli_uploader.ops.metrics import Totals, render
from awscli_uploader.scan.record import Stats, Tally

# one worker loads the jsii assembly of aws-cdk-lib (seconds of node CPU) for all such modules
pytestmark = pytest.mark.xdist_group("jsii")

NAMESPACE = "AwscliUploaderTest"


def _publisher() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cw_metrics", cloudwatch_render.METRICS_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PUBLISHER = _publisher()


def _metrics_text(*, uploaded_bytes: int, failed: int, valid: bool) -> str:
    """What the daemon itself writes with --metrics-file."""
    totals = Totals()
    stats = Stats()
    stats.buckets["b-1"] = Tally(Counter({Count.UPLOADED: 2, Count.FAILED: failed}), uploaded_bytes)
    stats.buckets["b-2"] = Tally(Counter({Count.UPLOADED: 1}), 10)
    totals.add(stats)
    now_ns = 1_800_000_100 * NS
    waiting = [
        Backlog("b-1", "b-1", files=2, bytes=700, oldest_mtime_ns=now_ns - 90 * NS),
        Backlog("b-2", "b-2", files=1, bytes=5, oldest_mtime_ns=now_ns - 30 * NS),
    ]
    return render(totals, stats, waiting, credentials_valid=valid, now_ns=now_ns)


def _values(data: list[dict[str, Any]]) -> dict[str, float]:
    return {entry["MetricName"]: entry["Value"] for entry in data}


def test_the_daemons_metrics_file_becomes_cloudwatch_metrics() -> None:
    samples = PUBLISHER.parse(_metrics_text(uploaded_bytes=100, failed=1, valid=True))
    data, totals = PUBLISHER.metric_data(samples, {}, "i-1")
    assert _values(data) == {
        "BacklogFiles": 3,
        "BacklogBytes": 705,
        "BacklogOldestAgeSeconds": 90,
        "CredentialsValid": 1,
        "UploadedBytes": 0,  # no earlier run: nothing to subtract from yet
        "UploadedFiles": 0,
        "FailedFiles": 0,
    }
    assert totals == {
        "uploaded_bytes_total": 110,
        "uploaded_files_total": 3,
        "failed_files_total": 1,
    }
    assert {entry["MetricName"] for entry in data} == set(cloudwatch_render.METRIC_NAMES)
    assert all(entry["Dimensions"] == [{"Name": "InstanceId", "Value": "i-1"}] for entry in data)


@pytest.mark.parametrize(
    ("now", "before", "delta"),
    [(110, None, 0), (110, 100, 10), (110, 110, 0), (5, 110, 5)],  # the last: a restart
)
def test_counter_deltas(now: float, before: float | None, delta: float) -> None:
    assert PUBLISHER.delta(now, before) == delta


def test_publisher_puts_the_metrics_with_the_real_aws_cli(
    tmp_path: Path, moto: Moto, aws_cli: str
) -> None:
    metrics = tmp_path / "metrics.prom"
    state = tmp_path / "state.json"
    env = {
        **os.environ,
        "AWS_CLI": aws_cli,
        "AWS_ENDPOINT_URL": moto.url,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "PYTHONPATH": str(REPO),
    }
    command = [sys.executable, str(cloudwatch_render.METRICS_SCRIPT), str(metrics), str(state)]
    with fake_imds(ImdsState(instance_id="i-0abc")) as url:
        env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = url
        for uploaded in (100, 250):
            metrics.write_text(_metrics_text(uploaded_bytes=uploaded, failed=0, valid=False))
            result = subprocess.run(
                [*command, NAMESPACE], env=env, capture_output=True, text=True, timeout=120
            )
            assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(state.read_text())["uploaded_bytes_total"] == 260

    import boto3

    client = boto3.client(
        "cloudwatch",
        endpoint_url=moto.url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    listed = client.list_metrics(Namespace=NAMESPACE)["Metrics"]
    assert {m["MetricName"] for m in listed} == set(cloudwatch_render.METRIC_NAMES)
    assert all(m["Dimensions"] == [{"Name": "InstanceId", "Value": "i-0abc"}] for m in listed)


def test_publisher_without_a_metrics_file_yet_does_nothing(tmp_path: Path) -> None:
    assert PUBLISHER.main(["x", str(tmp_path / "none.prom"), str(tmp_path / "s"), "N"]) == 0
    assert not (tmp_path / "s").exists()


def _script() -> str:
    return cloudwatch_render.render_cloudwatch(
        log_group="/awscli-uploader/test", namespace=NAMESPACE, install_dir="/opt/awscli-uploader"
    )


def test_cloudwatch_bootstrap_passes_shellcheck_and_embeds_the_publisher(tmp_path: Path) -> None:
    path = tmp_path / "cloudwatch.sh"
    path.write_text(_script())
    result = shellcheck(path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert heredoc(_script(), "PYTHON") == cloudwatch_render.METRICS_SCRIPT.read_text()


def _expanding_heredoc(text: str, opening: str, delimiter: str) -> str:
    start = text.index(f"{opening} <<{delimiter}\n") + len(f"{opening} <<{delimiter}\n")
    return text[start : text.index(f"\n{delimiter}\n", start) + 1]


def test_agent_follows_the_file_the_daemon_writes_its_json_lines_to() -> None:
    script = _script()
    drop_in = _expanding_heredoc(script, "service.d/cloudwatch.conf", "UNIT")
    assert "Environment=S3_UPLOAD_LOG_FORMAT=json\n" in drop_in
    assert "StandardOutput=append:$LOG_FILE\n" in drop_in
    assert f"\nLOG_FILE='{cloudwatch_render.LOG_FILE}'\n" in script
    config = json.loads(
        _expanding_heredoc(script, '"$AGENT_CONFIG"', "JSON")
        .replace("$LOG_FILE", "F")
        .replace("$LOG_GROUP", "G")
    )
    (entry,) = config["logs"]["logs_collected"]["files"]["collect_list"]
    assert (entry["file_path"], entry["log_group_name"]) == ("F", "G")


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"namespace": "bad namespace!"}, "metric namespace"), ({"log_group": "a b"}, "log group")],
)
def test_bad_names_are_refused(changes: dict[str, str], message: str) -> None:
    values = {"log_group": "/g", "namespace": "N", "install_dir": "/opt/x", **changes}
    with pytest.raises(Exception, match=message):
        cloudwatch_render.render_cloudwatch(**values)


# The stack: log group, IAM, alarms, dashboard.


@pytest.fixture(scope="module")
def template(dummy_asset: Path) -> Any:
    require_aws_cdk()
    from aws_cdk import App
    from aws_cdk.assertions import Template
    from awscli_uploader_infra import SpotInstancesStack

    stack = SpotInstancesStack(
        App(),
        "Spot",
        bucket_names=["sim-results"],
        wheel_path=str(dummy_asset),
        image_id="ami-0123456789abcdef0",
        coordinator_commands=["run-the-simulation"],
    )
    return Template.from_stack(stack)


def test_log_group_keeps_a_month(template: Any) -> None:
    _, group = only_resource(template, "AWS::Logs::LogGroup")
    assert group["Properties"]["RetentionInDays"] == 30
    assert group["DeletionPolicy"] == "Retain"


def test_iam_only_on_that_log_group_and_that_namespace(template: Any) -> None:
    group_id, _ = only_resource(template, "AWS::Logs::LogGroup")
    _, policy = only_resource(template, "AWS::IAM::Policy")
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    assert statements["AwscliUploaderLogs"]["Resource"] == {"Fn::GetAtt": [group_id, "Arn"]}
    assert statements["AwscliUploaderLogs"]["Action"] == [
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "logs:DescribeLogStreams",
    ]
    metrics = statements["AwscliUploaderMetrics"]
    assert metrics["Action"] == "cloudwatch:PutMetricData"
    assert metrics["Condition"] == {"StringEquals": {"cloudwatch:namespace": "AwscliUploader"}}


def test_alarms_on_backlog_age_and_credentials(template: Any) -> None:
    instance_id, _ = only_resource(template, "AWS::EC2::Instance")
    alarms = {
        body["Properties"]["MetricName"]: body["Properties"]
        for body in template.find_resources("AWS::CloudWatch::Alarm").values()
    }
    assert set(alarms) == {"BacklogOldestAgeSeconds", "CredentialsValid"}
    age, credentials = alarms["BacklogOldestAgeSeconds"], alarms["CredentialsValid"]
    assert (age["Threshold"], age["ComparisonOperator"]) == (3600, "GreaterThanThreshold")
    assert (credentials["Threshold"], credentials["ComparisonOperator"]) == (
        1,
        "LessThanThreshold",
    )
    assert credentials["TreatMissingData"] == "breaching"
    for alarm in (age, credentials):
        assert alarm["Namespace"] == "AwscliUploader"
        assert alarm["Dimensions"] == [{"Name": "InstanceId", "Value": {"Ref": instance_id}}]


def test_dashboard_shows_backlog_throughput_and_failures_per_instance(template: Any) -> None:
    _, dashboard = only_resource(template, "AWS::CloudWatch::Dashboard")
    parts = dashboard["Properties"]["DashboardBody"]["Fn::Join"][1]
    body = "".join(p for p in parts if isinstance(p, str))
    for metric in ("BacklogFiles", "BacklogBytes", "BacklogOldestAgeSeconds", "FailedFiles"):
        assert f"SEARCH('{{AwscliUploader,InstanceId}} MetricName=\\\"{metric}\\\"'" in body
    assert "Uploaded bytes per minute" in body
    assert "MetricName=\\\"UploadedBytes\\\"', 'Sum', 60)" in body


def test_cloudwatch_bootstrap_runs_after_the_uploader_and_before_the_coordinator(
    template: Any,
) -> None:
    text = user_data_text(template)
    order = [
        text.index("/usr/local/sbin/awscli-uploader-bootstrap || exit 1"),
        text.index(f"{cloudwatch_render.CLOUDWATCH_PATH} || exit 1"),
        text.index("run-the-simulation"),
    ]
    assert order == sorted(order)


def test_cloudwatch_is_optional(dummy_asset: Path) -> None:
    require_aws_cdk()
    from aws_cdk import App
    from aws_cdk.assertions import Template
    from awscli_uploader_infra import SpotInstancesStack

    stack = SpotInstancesStack(
        App(),
        "Plain",
        bucket_names=["sim-results"],
        wheel_path=str(dummy_asset),
        image_id="ami-0123456789abcdef0",
        cloudwatch=False,
    )
    template = Template.from_stack(stack)
    for kind in ("AWS::Logs::LogGroup", "AWS::CloudWatch::Alarm", "AWS::CloudWatch::Dashboard"):
        template.resource_count_is(kind, 0)
    assert "cloudwatch" not in user_data_text(template)
