"""Logs and metrics that leave the box: the publisher against moto, the bootstrap script,
and the log group, IAM, alarms and dashboard in the stack."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import stat
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from awscli_uploader_infra import cloudwatch_render, render
from fake_imds import ImdsState, fake_imds
from helpers import REGION, REPO, Moto
from infra_helpers import (
    exposure,
    only_resource,
    require_aws_cdk,
    shellcheck,
    systemd_verify,
    user_data_text,
)

from awscli_uploader.model import NS, Count
from awscli_uploader.ops.backlog import Backlog
from awscli_uploader.ops.metrics import Totals
from awscli_uploader.ops.metrics import render as render_metrics
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


def _metrics_text(
    *, uploaded_bytes: int, failed: int, valid: bool, scan_started: float = 1_800_000_000
) -> str:
    """What the daemon itself writes with --metrics-file."""
    totals = Totals()
    stats = Stats(started=scan_started)
    stats.buckets["b-1"] = Tally(Counter({Count.UPLOADED: 2, Count.FAILED: failed}), uploaded_bytes)
    stats.buckets["b-2"] = Tally(Counter({Count.UPLOADED: 1}), 10)
    totals.add(stats)
    now_ns = 1_800_000_100 * NS
    waiting = [
        Backlog("b-1", "b-1", files=2, bytes=700, oldest_mtime_ns=now_ns - 90 * NS),
        Backlog("b-2", "b-2", files=1, bytes=5, oldest_mtime_ns=now_ns - 30 * NS),
    ]
    return render_metrics(totals, stats, waiting, credentials_valid=valid, now_ns=now_ns)


def _values(data: list[dict[str, Any]]) -> dict[str, float]:
    return {entry["MetricName"]: entry["Value"] for entry in data}


def test_the_daemons_metrics_file_becomes_cloudwatch_metrics() -> None:
    samples = PUBLISHER.parse(_metrics_text(uploaded_bytes=100, failed=1, valid=True))
    data, totals = PUBLISHER.metric_data(samples, {}, "i-1", now=1_800_000_250)
    assert _values(data) == {
        "ScanAgeSeconds": 250,  # computed now, from the last scan's start
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
    with fake_imds(ImdsState(instance_id="i-0abc", region=REGION)) as url:
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


@pytest.mark.parametrize(
    ("started", "now", "age"),
    [(1000.0, 1060.0, 60.0), (1000.0, 8200.0, 7200.0), (1000.0, 990.0, 0.0)],  # clock skew
)
def test_scan_age_keeps_growing_while_no_scan_finishes(
    started: float, now: float, age: float
) -> None:
    assert PUBLISHER.scan_age({"last_scan_start_time_seconds": [started]}, now) == age
    assert PUBLISHER.scan_age({}, now) is None  # no scan yet: no figure, the alarm's missing data


def test_publisher_imports_the_imds_client_from_its_new_place_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    moved, old = ModuleType("awscli_uploader.ec2.imds"), ModuleType("awscli_uploader.imds")
    monkeypatch.setitem(sys.modules, "awscli_uploader.imds", old)
    monkeypatch.setitem(sys.modules, "awscli_uploader.ec2", ModuleType("awscli_uploader.ec2"))
    monkeypatch.setitem(sys.modules, "awscli_uploader.ec2.imds", moved)
    assert PUBLISHER._imds_module() is moved
    monkeypatch.setitem(sys.modules, "awscli_uploader.ec2.imds", None)  # not moved yet
    assert PUBLISHER._imds_module() is old
    monkeypatch.delitem(sys.modules, "awscli_uploader.ec2.imds")
    broken = ModuleType("awscli_uploader.ec2")
    broken.__path__ = []  # a package without imds: as before the move
    monkeypatch.setitem(sys.modules, "awscli_uploader.ec2", broken)
    assert PUBLISHER._imds_module() is old


def test_a_broken_new_imds_module_is_not_hidden_by_the_fallback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    package = tmp_path / "awscli_uploader"
    (package / "ec2").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "imds.py").write_text("")
    (package / "ec2" / "__init__.py").write_text("")
    (package / "ec2" / "imds.py").write_text("import a_dependency_that_is_missing\n")
    for name in [m for m in sys.modules if m.split(".")[0] == "awscli_uploader"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="a_dependency_that_is_missing"):
        PUBLISHER._imds_module()


FAKE_AWS = """#!{python}
import json, os, sys
with open(os.environ["AWS_CALLS"], "a") as calls:
    calls.write(json.dumps(sys.argv[1:]) + "\\n")
sys.exit(int(os.environ.get("AWS_EXIT", "0")))
"""


def _run_publisher(
    tmp_path: Path, metrics: str, *, group: str | None = None, aws_exit: int = 0
) -> tuple[subprocess.CompletedProcess[str], list[list[str]]]:
    """The publisher as its timer runs it: `aws` from PATH (a fake that records its
    arguments), the instance id from a fake metadata service."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "aws").write_text(FAKE_AWS.format(python=sys.executable))
    (bin_dir / "aws").chmod(0o755)
    (tmp_path / "metrics.prom").write_text(metrics)
    calls = tmp_path / "calls.jsonl"
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(REPO),
        "AWS_CALLS": str(calls),
        "AWS_EXIT": str(aws_exit),
    }
    if group is not None:
        env["S3_UPLOAD_AUTOSCALING_GROUP"] = group
    command = [sys.executable, str(cloudwatch_render.METRICS_SCRIPT)]
    command += [str(tmp_path / "metrics.prom"), str(tmp_path / "state.json"), NAMESPACE]
    with fake_imds(ImdsState(instance_id="i-0abc")) as url:
        env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = url
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    recorded = (
        [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []
    )
    return result, recorded


def test_publisher_sends_the_scan_age_per_instance_and_per_group_to_aws(tmp_path: Path) -> None:
    stuck_since = time.time() - 7200  # a scan that started two hours ago and never ended
    metrics = _metrics_text(uploaded_bytes=1, failed=0, valid=True, scan_started=stuck_since)
    result, calls = _run_publisher(tmp_path, metrics, group="Spot-uploader")
    assert result.returncode == 0, result.stdout + result.stderr
    (call,) = calls
    assert call[:6] == [
        "cloudwatch",
        "put-metric-data",
        "--namespace",
        NAMESPACE,
        "--region",
        "eu-central-1",  # the instance's own (the alarms'), not AWS_REGION, the buckets'
    ]
    assert call[6] == "--metric-data"
    data = json.loads(call[7])
    instance = [{"Name": "InstanceId", "Value": "i-0abc"}]
    group = [{"Name": "AutoScalingGroupName", "Value": "Spot-uploader"}]
    for dimensions in (instance, group):
        entries = {e["MetricName"]: e for e in data if e["Dimensions"] == dimensions}
        assert set(entries) == set(cloudwatch_render.METRIC_NAMES)
        scan = entries["ScanAgeSeconds"]
        assert scan["Unit"] == "Seconds"
        assert 7200 <= scan["Value"] < 7260
    assert json.loads((tmp_path / "state.json").read_text())["uploaded_bytes_total"] == 11


def test_publisher_without_a_group_sends_per_instance_only(tmp_path: Path) -> None:
    result, [call] = _run_publisher(tmp_path, _metrics_text(uploaded_bytes=1, failed=0, valid=True))
    assert result.returncode == 0, result.stdout + result.stderr
    dimensions = {json.dumps(e["Dimensions"]) for e in json.loads(call[7])}
    assert dimensions == {json.dumps([{"Name": "InstanceId", "Value": "i-0abc"}])}


def test_a_failed_put_is_reported_and_the_totals_are_kept_for_the_next_run(
    tmp_path: Path,
) -> None:
    metrics = _metrics_text(uploaded_bytes=1, failed=0, valid=True)
    result, calls = _run_publisher(tmp_path, metrics, aws_exit=255)
    assert result.returncode == 1
    assert "put-metric-data failed" in result.stdout
    assert len(calls) == 1
    assert not (tmp_path / "state.json").exists()


def test_publisher_without_a_metrics_file_yet_does_nothing(tmp_path: Path) -> None:
    assert PUBLISHER.main(["x", str(tmp_path / "none.prom"), str(tmp_path / "s"), "N"]) == 0
    assert not (tmp_path / "s").exists()


def _script() -> str:
    return cloudwatch_render.render_cloudwatch(
        log_group="/awscli-uploader/test",
        namespace=NAMESPACE,
        install_dir="/opt/awscli-uploader",
        publisher_s3_url="s3://cdk-assets-bucket/0123abcd.py",
        asset_region="eu-west-1",
    )


def test_cloudwatch_bootstrap_passes_shellcheck_and_fetches_the_publisher(tmp_path: Path) -> None:
    path = tmp_path / "cloudwatch.sh"
    path.write_text(_script())
    result = shellcheck(path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        'aws s3 cp --only-show-errors --region "$ASSET_REGION" "$PUBLISHER_S3_URL" "$PUBLISHER"'
        in _script()
    )
    assert "\nPUBLISHER_S3_URL='s3://cdk-assets-bucket/0123abcd.py'\n" in _script()


def _expanding_heredoc(text: str, opening: str, delimiter: str) -> str:
    start = text.index(f"{opening} <<{delimiter}\n") + len(f"{opening} <<{delimiter}\n")
    return text[start : text.index(f"\n{delimiter}\n", start) + 1]


def _expanded(text: str, script: str) -> str:
    """A here-document's text with the script's own NAME='value' variables filled in."""
    values = dict(re.findall(r"^([A-Z_]+)='([^']*)'$", script, re.MULTILINE))
    return re.sub(r"\$([A-Z_]+)", lambda m: values[m.group(1)], text)


def _cloudwatch_units(tmp_path: Path) -> dict[str, Path]:
    """The publisher's unit and timer, and the uploader's unit with the CloudWatch drop-in
    next to it, as the bootstrap scripts write them (the venv a stand-in)."""
    script = _script()
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    for name in ("python", "awscli-uploader"):
        (venv / "bin" / name).write_text("#!/bin/sh\n")
        (venv / "bin" / name).chmod(stat.S_IRWXU)
    units = tmp_path / "units"
    (units / f"{render.SERVICE_NAME}.d").mkdir(parents=True)
    found: dict[str, Path] = {}
    for name in ("awscli-uploader-cloudwatch.service", "awscli-uploader-cloudwatch.timer"):
        text = _expanded(_expanding_heredoc(script, f"/etc/systemd/system/{name}", "UNIT"), script)
        found[name] = units / name
        found[name].write_text(text.replace("/opt/awscli-uploader", str(venv)))
    settings = render.UploaderSettings(bucket_names=("b-1",), root_dir="/data/s3", region=REGION)
    wheel = render.WheelSource(s3_url="s3://b/k.zip", name="a-0-py3-none-any.whl", region=REGION)
    unit = render.unit_text(render.render_user_data(settings, wheel))
    found[render.SERVICE_NAME] = units / render.SERVICE_NAME
    found[render.SERVICE_NAME].write_text(unit.replace("/opt/awscli-uploader", str(venv)))
    drop_in = _expanding_heredoc(script, "service.d/cloudwatch.conf", "UNIT")
    found["cloudwatch.conf"] = units / f"{render.SERVICE_NAME}.d" / "cloudwatch.conf"
    found["cloudwatch.conf"].write_text(_expanded(drop_in, script))
    return found


@pytest.mark.parametrize(
    "name",
    ["awscli-uploader-cloudwatch.service", "awscli-uploader-cloudwatch.timer", render.SERVICE_NAME],
)
def test_cloudwatch_units_pass_systemd_analyze_verify(tmp_path: Path, name: str) -> None:
    unit = _cloudwatch_units(tmp_path)[name]
    result = systemd_verify(unit)
    assert result.returncode == 0, result.stderr
    assert str(unit.parent) not in result.stderr, result.stderr


def test_publisher_unit_is_hardened_to_an_exposure_of_3_or_less(tmp_path: Path) -> None:
    assert exposure(_cloudwatch_units(tmp_path)["awscli-uploader-cloudwatch.service"]) <= 3.0


def test_the_drop_in_keeps_the_uploaders_exposure(tmp_path: Path) -> None:
    units = _cloudwatch_units(tmp_path)
    alone = exposure(units[render.SERVICE_NAME])
    merged = tmp_path / "merged" / render.SERVICE_NAME
    merged.parent.mkdir()
    merged.write_text(units[render.SERVICE_NAME].read_text() + units["cloudwatch.conf"].read_text())
    assert exposure(merged) <= alone <= 3.0


def test_the_daemon_stops_before_the_agent_so_its_last_lines_ship() -> None:
    drop_in = _expanding_heredoc(_script(), "service.d/cloudwatch.conf", "UNIT")
    assert drop_in.startswith("[Unit]\nAfter=amazon-cloudwatch-agent.service\n\n[Service]\n")


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
    values = {
        "log_group": "/g",
        "namespace": "N",
        "install_dir": "/opt/x",
        "publisher_s3_url": "s3://b/k.py",
        "asset_region": "eu-west-1",
        **changes,
    }
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
    statements = {s.get("Sid"): s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    assert statements["AwscliUploaderLogs"]["Resource"] == {"Fn::GetAtt": [group_id, "Arn"]}
    assert statements["AwscliUploaderLogs"]["Action"] == [
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "logs:DescribeLogStreams",
    ]
    metrics = statements["AwscliUploaderMetrics"]
    assert metrics["Action"] == "cloudwatch:PutMetricData"
    assert metrics["Condition"] == {"StringEquals": {"cloudwatch:namespace": "AwscliUploader"}}
    publisher = json.dumps(statements["AwscliUploaderPublisherAsset"]["Resource"])
    assert statements["AwscliUploaderPublisherAsset"]["Action"] == "s3:GetObject"
    assert publisher.endswith('.py"]]}')  # the one file, not the assets bucket


def _alarms(template: Any) -> dict[str, dict[str, Any]]:
    return {
        body["Properties"]["MetricName"]: body["Properties"]
        for body in template.find_resources("AWS::CloudWatch::Alarm").values()
    }


def test_alarms_on_scan_age_backlog_age_and_credentials_per_group(template: Any) -> None:
    _, group = only_resource(template, "AWS::AutoScaling::AutoScalingGroup")
    alarms = _alarms(template)
    assert set(alarms) == {"ScanAgeSeconds", "BacklogOldestAgeSeconds", "CredentialsValid"}
    scan, age = alarms["ScanAgeSeconds"], alarms["BacklogOldestAgeSeconds"]
    credentials = alarms["CredentialsValid"]
    assert (scan["Threshold"], scan["ComparisonOperator"]) == (3600, "GreaterThanThreshold")
    # a stopped instance or a dead publisher sends nothing: that too is an alarm
    assert scan["TreatMissingData"] == "breaching"
    assert (age["Threshold"], age["ComparisonOperator"]) == (3600, "GreaterThanThreshold")
    assert (credentials["Threshold"], credentials["ComparisonOperator"]) == (
        1,
        "LessThanThreshold",
    )
    # a replacement's gap must not flap it: no data at all is the scan-age alarm's to say
    assert credentials["TreatMissingData"] == "notBreaching"
    for alarm in alarms.values():
        assert alarm["Namespace"] == "AwscliUploader"
        # the group's name, which outlives every instance of it
        assert alarm["Dimensions"] == [
            {"Name": "AutoScalingGroupName", "Value": group["Properties"]["AutoScalingGroupName"]}
        ]
        assert "AlarmActions" not in alarm  # no topic given


TOPIC_ARN = "arn:aws:sns:eu-west-1:123456789012:simulation-alerts"


def _stack_with_topic(dummy_asset: Path) -> Any:
    require_aws_cdk()
    from aws_cdk import App, Stack
    from aws_cdk import aws_sns as sns
    from awscli_uploader_infra import SpotInstancesStack

    app = App()
    shared = Stack(app, "Shared")
    sns.Topic(shared, "Others")  # a stack of its own, not empty
    topic = sns.Topic.from_topic_arn(shared, "Alerts", TOPIC_ARN)
    return SpotInstancesStack(
        app,
        "Spot",
        bucket_names=["sim-results"],
        wheel_path=str(dummy_asset),
        image_id="ami-0123456789abcdef0",
        alarm_topic=topic,
    )


def test_alarms_notify_the_topic_and_are_reachable_from_the_stack(dummy_asset: Path) -> None:
    from aws_cdk.assertions import Template

    stack = _stack_with_topic(dummy_asset)
    alarms = _alarms(Template.from_stack(stack))
    assert len(alarms) == 3
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == [TOPIC_ARN]
        assert alarm["OKActions"] == [TOPIC_ARN]
    assert [a.node.id for a in stack.alarms] == [
        "ScanAgeAlarm",
        "BacklogAgeAlarm",
        "CredentialsAlarm",
    ]
    assert stack.alarms == stack.cloudwatch.alarms


def test_spot_warnings_rebalances_and_failed_launches_go_to_the_topic(dummy_asset: Path) -> None:
    from aws_cdk.assertions import Match, Template

    template = Template.from_stack(_stack_with_topic(dummy_asset))
    target = Match.array_with([Match.object_like({"Arn": TOPIC_ARN})])
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.ec2"],
                "detail-type": [
                    "EC2 Spot Instance Interruption Warning",
                    "EC2 Instance Rebalance Recommendation",
                ],
            },
            "Targets": target,
        },
    )
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.autoscaling"],
                "detail-type": Match.array_with(["EC2 Instance Launch Unsuccessful"]),
                "detail": {"AutoScalingGroupName": ["Spot-uploader"]},
            },
            "Targets": target,
        },
    )


def test_no_topic_no_rules(template: Any) -> None:
    template.resource_count_is("AWS::Events::Rule", 0)


def test_an_sns_action_added_as_the_readme_says_synthesizes(dummy_asset: Path) -> None:
    """The README's recipe for a topic of one's own, after the stack is made: once on the
    alarms, not a second set of alarms with the same construct ids."""
    require_aws_cdk()
    from aws_cdk import App
    from aws_cdk import aws_cloudwatch_actions as cw_actions
    from aws_cdk import aws_sns as sns
    from aws_cdk.assertions import Template
    from awscli_uploader_infra import SpotInstancesStack

    stack = SpotInstancesStack(
        App(),
        "Spot",
        bucket_names=["sim-results"],
        wheel_path=str(dummy_asset),
        image_id="ami-0123456789abcdef0",
    )
    topic = sns.Topic(stack, "Alerts")
    for alarm in stack.alarms:
        alarm.add_alarm_action(cw_actions.SnsAction(topic))
    topic_id, _ = only_resource(Template.from_stack(stack), "AWS::SNS::Topic")
    for alarm in _alarms(Template.from_stack(stack)).values():
        assert alarm["AlarmActions"] == [{"Ref": topic_id}]
    with pytest.raises(ValueError, match="the alarms exist already"):
        stack.cloudwatch.add_alarms(dimensions={"AutoScalingGroupName": "Spot-uploader"})


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
        text.index("\nAWSCLI_UPLOADER_SIGNALLED=1\n"),
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
    assert stack.alarms == ()
    for kind in ("AWS::Logs::LogGroup", "AWS::CloudWatch::Alarm", "AWS::CloudWatch::Dashboard"):
        template.resource_count_is(kind, 0)
    assert "cloudwatch" not in user_data_text(template)
