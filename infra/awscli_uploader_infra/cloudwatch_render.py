"""The CloudWatch side of the instance: its bootstrap script and metric names (no aws_cdk).

`templates/cloudwatch.sh.tmpl` installs the CloudWatch agent for the daemon's
JSON log lines and a timer that publishes the metrics file with
`templates/cloudwatch_metrics.py`, which it fetches from S3 (its own asset).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from .render import TEMPLATES_DIR, InvalidSettingsError, substitute

CLOUDWATCH_TEMPLATE = TEMPLATES_DIR / "cloudwatch.sh.tmpl"
METRICS_SCRIPT = TEMPLATES_DIR / "cloudwatch_metrics.py"
CLOUDWATCH_PATH = "/usr/local/sbin/awscli-uploader-cloudwatch-bootstrap"
DEFAULT_NAMESPACE = "AwscliUploader"
LOG_FILE = "/var/log/awscli-uploader/daemon.log"
METRIC_NAMES = (
    "ScanAgeSeconds",
    "BacklogFiles",
    "BacklogBytes",
    "BacklogOldestAgeSeconds",
    "CredentialsValid",
    "UploadedBytes",
    "UploadedFiles",
    "FailedFiles",
)
_NAMESPACE = re.compile(r"[A-Za-z0-9._/#:-]{1,255}")
_LOG_GROUP = re.compile(r"[A-Za-z0-9._/#-]{1,512}")


def render_cloudwatch(
    *,
    log_group: str,
    namespace: str,
    install_dir: str,
    publisher_s3_url: str,
    asset_region: str,
    is_token: Callable[[str], bool] = lambda _value: False,
) -> str:
    """The CloudWatch bootstrap script, which fetches the publisher from `publisher_s3_url`."""
    problems = [
        f"{label} {value!r} is invalid"
        for label, value, pattern in (
            ("log group", log_group, _LOG_GROUP),
            ("metric namespace", namespace, _NAMESPACE),
        )
        if not is_token(value) and not pattern.fullmatch(value)
    ]
    if problems:
        raise InvalidSettingsError("awscli-uploader: " + "; ".join(problems))
    return substitute(
        CLOUDWATCH_TEMPLATE.read_text(encoding="utf-8"),
        {
            "LOG_GROUP": log_group,
            "NAMESPACE": namespace,
            "INSTALL_DIR": install_dir,
            "PUBLISHER_S3_URL": publisher_s3_url,
            "ASSET_REGION": asset_region,
        },
    )
