"""The CloudWatch side of the instance: its bootstrap script and metric names (no aws_cdk).

`templates/cloudwatch.sh.tmpl` installs the CloudWatch agent for the daemon's
JSON log lines and a timer that publishes the metrics file with
`templates/cloudwatch_metrics.py`, whose text it embeds.
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
    is_token: Callable[[str], bool] = lambda _value: False,
) -> str:
    """The CloudWatch bootstrap script with the metrics publisher in it."""
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
    script = METRICS_SCRIPT.read_text(encoding="utf-8")
    if "\nPYTHON\n" in f"\n{script}\n":
        raise ValueError("the metrics script may not contain the line PYTHON")
    template = CLOUDWATCH_TEMPLATE.read_text(encoding="utf-8")
    text = substitute(
        template.replace("@METRICS_SCRIPT@\n", "<<METRICS SCRIPT>>\n"),
        {"LOG_GROUP": log_group, "NAMESPACE": namespace, "INSTALL_DIR": install_dir},
    )
    return text.replace("<<METRICS SCRIPT>>\n", script)
