"""Publishes awscli-uploader's metrics file to CloudWatch, once; a systemd timer runs it.

It runs on the instance with the daemon's venv Python (the standard library and
awscli_uploader.ec2.imds only) and the AWS CLI: the backlog (files, bytes, oldest
age), credential validity, and per-minute deltas of the uploaded bytes, files and
failures, all with the InstanceId dimension in one namespace.

usage: cloudwatch_metrics.py METRICS_FILE STATE_FILE NAMESPACE
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

PREFIX = "awscli_uploader_"
_SAMPLE = re.compile(r"^([a-z_]+)(\{.*\})? ([0-9.eE+-]+|NaN)$")
Combine = Callable[[Iterable[float]], float]
GAUGES: dict[str, tuple[str, str, Combine]] = {
    "backlog_files": ("BacklogFiles", "Count", sum),
    "backlog_bytes": ("BacklogBytes", "Bytes", sum),
    "backlog_oldest_age_seconds": ("BacklogOldestAgeSeconds", "Seconds", max),
    "credentials_valid": ("CredentialsValid", "None", min),
}
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


def metric_data(
    samples: Mapping[str, list[float]], last: Mapping[str, float], instance_id: str
) -> tuple[list[dict[str, object]], dict[str, float]]:
    """The put-metric-data entries, and the counter totals to remember for the next run."""
    dimensions = [{"Name": "InstanceId", "Value": instance_id}]
    data: list[dict[str, object]] = []
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


def instance_id() -> str:
    from awscli_uploader.ec2.imds import DEFAULT_ENDPOINT, Imds

    endpoint = os.environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT") or DEFAULT_ENDPOINT
    found = Imds(endpoint=endpoint).instance_id()
    if found is None:
        raise SystemExit("awscli-uploader-cloudwatch: no instance id from the metadata service")
    return found


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
    data, totals = metric_data(samples, last, instance_id())
    aws = os.environ.get("AWS_CLI", "aws")
    command = [aws, "cloudwatch", "put-metric-data", "--namespace", namespace]
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
