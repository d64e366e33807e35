"""Publishes awscli-uploader's metrics file to CloudWatch, once; a systemd timer runs it.

It runs on the instance with the daemon's venv Python (the standard library and
the package's IMDS client only) and the AWS CLI: the backlog (files, bytes, oldest
age), credential validity, the scan age (now minus the last scan's start, computed
here, so a stuck scan or a crash loop raises it), and per-minute deltas of the
uploaded bytes, files and failures, all with the InstanceId dimension in one
namespace; and again with the AutoScalingGroupName dimension when
S3_UPLOAD_AUTOSCALING_GROUP names the group, so alarms outlive the instance.

usage: cloudwatch_metrics.py METRICS_FILE STATE_FILE NAMESPACE
"""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import ModuleType

PREFIX = "awscli_uploader_"
_SAMPLE = re.compile(r"^([a-z_]+)(\{.*\})? ([0-9.eE+-]+|NaN)$")
Combine = Callable[[Iterable[float]], float]
GAUGES: dict[str, tuple[str, str, Combine]] = {
    "backlog_files": ("BacklogFiles", "Count", sum),
    "backlog_bytes": ("BacklogBytes", "Bytes", sum),
    "backlog_oldest_age_seconds": ("BacklogOldestAgeSeconds", "Seconds", max),
    "credentials_valid": ("CredentialsValid", "None", min),
}
SCAN_START = "last_scan_start_time_seconds"
SCAN_AGE = ("ScanAgeSeconds", "Seconds")
COUNTERS = {
    "uploaded_bytes_total": ("UploadedBytes", "Bytes"),
    "uploaded_files_total": ("UploadedFiles", "Count"),
    "failed_files_total": ("FailedFiles", "Count"),
}


def parse(text: str) -> dict[str, list[float]]:
    """Prometheus text → every sample of each awscli_uploader family, labels dropped."""
    found: dict[str, list[float]] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line.strip())
        if match and match.group(1).startswith(PREFIX):
            name = match.group(1)[len(PREFIX) :]
            found.setdefault(name, []).append(float(match.group(3)))
    return found


def delta(now: float, before: float | None) -> float:
    """A counter's increase since the last run; a restart of the daemon starts it at 0."""
    if before is None:
        return 0.0
    return now if now < before else now - before


def scan_age(samples: Mapping[str, list[float]], now: float) -> float | None:
    """Seconds since the last finished scan started; None before the first one."""
    started = samples.get(SCAN_START)
    return max(0.0, now - max(started)) if started else None


def metric_data(
    samples: Mapping[str, list[float]],
    last: Mapping[str, float],
    instance_id: str,
    *,
    now: float,
) -> tuple[list[dict[str, object]], dict[str, float]]:
    """The put-metric-data entries (InstanceId dimension), and the counter totals to
    remember for the next run."""
    dimensions = [{"Name": "InstanceId", "Value": instance_id}]
    data: list[dict[str, object]] = []
    age = scan_age(samples, now)
    if age is not None:
        metric, unit = SCAN_AGE
        data.append({"MetricName": metric, "Unit": unit, "Value": age, "Dimensions": dimensions})
    for family, (metric, unit, combine) in GAUGES.items():
        values = samples.get(family)
        if values:
            data.append(
                {
                    "MetricName": metric,
                    "Unit": unit,
                    "Value": combine(values),
                    "Dimensions": dimensions,
                }
            )
    totals: dict[str, float] = {}
    for family, (metric, unit) in COUNTERS.items():
        total = sum(samples.get(family, [0.0]))
        totals[family] = total
        value = delta(total, last.get(family))
        data.append({"MetricName": metric, "Unit": unit, "Value": value, "Dimensions": dimensions})
    return data, totals


def per_group(data: list[dict[str, object]], group: str) -> list[dict[str, object]]:
    """The same entries with the AutoScalingGroupName dimension instead of InstanceId."""
    dimensions = [{"Name": "AutoScalingGroupName", "Value": group}]
    return [{**entry, "Dimensions": dimensions} for entry in data]


def _imds_module() -> ModuleType:
    """The package's IMDS client: awscli_uploader.ec2.imds, or awscli_uploader.imds in
    packages from before the move into subpackages. Imported late, so that the pure
    functions here run without the package."""
    try:
        return importlib.import_module("awscli_uploader.ec2.imds")
    except ModuleNotFoundError as error:
        if error.name not in ("awscli_uploader.ec2", "awscli_uploader.ec2.imds"):
            raise  # the new module is there, something it imports is not: say so
        return importlib.import_module("awscli_uploader.imds")


def instance() -> tuple[str, str | None]:
    """This instance's id, and its own region: the alarms are in the stack's region, and
    AWS_REGION is the buckets' (uploaderRegion may set it elsewhere)."""
    imds = _imds_module()
    endpoint = os.environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT") or imds.DEFAULT_ENDPOINT
    client = imds.Imds(endpoint=endpoint)
    found = client.instance_id()
    if found is None:
        raise SystemExit("awscli-uploader-cloudwatch: no instance id from the metadata service")
    region = client.region() if hasattr(client, "region") else None
    return found, region


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    metrics_file, state_file, namespace = Path(argv[1]), Path(argv[2]), argv[3]
    try:
        samples = parse(metrics_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        print(f"awscli-uploader-cloudwatch: no {metrics_file} yet (no scan so far)")
        return 0
    try:
        last = json.loads(state_file.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        last = {}
    instance_id, region = instance()
    data, totals = metric_data(samples, last, instance_id, now=time.time())
    group = os.environ.get("S3_UPLOAD_AUTOSCALING_GROUP")
    if group:
        data += per_group(data, group)
    aws = os.environ.get("AWS_CLI", "aws")
    command = [aws, "cloudwatch", "put-metric-data", "--namespace", namespace]
    if region:
        command += ["--region", region]
    # A VPC endpoint, or a test's: older CLIs ignore AWS_ENDPOINT_URL themselves.
    endpoint = os.environ.get("AWS_ENDPOINT_URL_CLOUDWATCH") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        command += ["--endpoint-url", endpoint]
    result = subprocess.run(
        [*command, "--metric-data", json.dumps(data)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        print(f"awscli-uploader-cloudwatch: put-metric-data failed: {result.stderr.strip()}")
        return 1
    state_file.write_text(json.dumps(totals), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
