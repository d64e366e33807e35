"""Settings, their validation, and the rendering of the plain-file templates.

`infra/templates/` holds the one source of the IAM policy, the bootstrap
script and the systemd unit inside it. The construct renders them here; stacks
in other CDK languages use the same files and replace the `@NAME@`
placeholders themselves. Nothing here imports aws_cdk.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
USER_DATA_TEMPLATE = TEMPLATES_DIR / "user_data.sh.tmpl"
POLICY_TEMPLATE = TEMPLATES_DIR / "policy.json.tmpl"

SERVICE_NAME = "awscli-uploader.service"
ENV_FILE = "/etc/awscli-uploader/env"
BOOTSTRAP_PATH = "/usr/local/sbin/awscli-uploader-bootstrap"
BUCKET_PLACEHOLDER = "@BUCKET@"
COORDINATOR_PATH = "/usr/local/sbin/awscli-uploader-coordinator"
COORDINATOR_SERVICE = "awscli-uploader-coordinator.service"
COORDINATOR_UNIT = f"""[Unit]
Description=The coordinator's commands, started once the uploader is up
Wants={SERVICE_NAME}
After={SERVICE_NAME}

[Service]
Type=exec
ExecStart={COORDINATOR_PATH}
"""
# The daemon notes in its state directory that the instance is going (a spot notice, or
# the group terminating it); this path unit starts a target that conflicts with the
# coordinator, so systemd stops it: no file is written that could not leave.
TERMINATING_NOTE = ".awscli-uploader/terminating"  # under the root: the package's StateDir
TERMINATING_PATH = "awscli-uploader-terminating.path"
TERMINATING_TARGET = "awscli-uploader-terminating.target"
TERMINATING_TARGET_UNIT = f"""[Unit]
Conflicts={COORDINATOR_SERVICE}
"""

DEFAULT_INTERVAL = 60
DEFAULT_STABILITY: float = 2
DEFAULT_WRITER_GROUP = "awscli-uploader"
DEFAULT_PYTHON = "python3.11"
DEFAULT_INSTALL_DIR = "/opt/awscli-uploader"

_PLACEHOLDER = re.compile(r"@([A-Z][A-Z0-9_]*)@")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_PATH = re.compile(r"(/[A-Za-z0-9._-]+)+")
_GROUP = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]+")
_FLAG = re.compile(r"[A-Za-z0-9_@+=:,./-]+")
_PYTHON = re.compile(r"python3(\.[0-9]+)?")
_WHEEL_NAME = re.compile(r"[A-Za-z0-9_.+!-]+\.whl")
_KMS_KEY_ARN = re.compile(r"arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+")
_S3_URL = re.compile(r"s3://[a-z0-9.-]+/[A-Za-z0-9._/+-]+")
_DEVICE = re.compile(r"/dev/(sd|xvd)[f-p]")
_HOOK_NAME = re.compile(r"[A-Za-z0-9_/-]{1,255}")
_GROUP_NAME = re.compile(r"[A-Za-z0-9._/-]{1,255}")
_COMMENT_LINE = re.compile(r"\s*#")
_UNIT_HEREDOC = re.compile(r"<<'UNIT'\n(.*?\n)UNIT\n", re.DOTALL)


_IMAGE_ID = re.compile(r"ami-[0-9a-f]{8,17}")


def is_image_id(value: str) -> bool:
    return _IMAGE_ID.fullmatch(value) is not None


class InvalidSettingsError(ValueError):
    """Raised at synth when a prop can't be used; the message lists every problem."""


def _never_token(_value: str) -> bool:
    return False


@dataclass(frozen=True)
class UploaderSettings:
    """What the daemon on the instance needs, as the construct's props give it."""

    bucket_names: tuple[str, ...]
    root_dir: str
    region: str
    interval: int = DEFAULT_INTERVAL
    stability: float = DEFAULT_STABILITY
    writer_group: str = DEFAULT_WRITER_GROUP
    extra_flags: tuple[str, ...] = ()
    python: str = DEFAULT_PYTHON
    install_dir: str = DEFAULT_INSTALL_DIR
    kms_key_arns: tuple[str, ...] = ()
    data_device: str = ""  # an EBS device name mounted at root_dir; "" for none
    drain_hook: DrainHook | None = None


@dataclass(frozen=True)
class DrainHook:
    """The termination lifecycle hook the daemon completes once the backlog is drained:
    `S3_UPLOAD_LIFECYCLE_HOOK` and `S3_UPLOAD_AUTOSCALING_GROUP` on the instance."""

    hook_name: str
    group_name: str


@dataclass(frozen=True)
class WheelSource:
    """Where the instance fetches the package from: the S3 object (a zip of the package's
    wheel and its dependencies' wheels) and the file name of the package's wheel in it."""

    s3_url: str
    name: str
    region: str


def _check(
    problems: list[str],
    label: str,
    value: object,
    pattern: re.Pattern[str],
    rule: str,
    is_token: Callable[[str], bool],
) -> None:
    if isinstance(value, str) and is_token(value):
        return
    if not isinstance(value, str) or not pattern.fullmatch(value):
        problems.append(f"{label} {value!r} is invalid: {rule}")


def settings_problems(  # noqa: C901 - one independent check per setting, read top to bottom
    settings: UploaderSettings, *, is_token: Callable[[str], bool] = _never_token
) -> list[str]:
    """Every reason the settings can't be deployed; empty when they can.

    Values that are unresolved CDK tokens (e.g. the stack's region) are only
    known at deploy time and are not checked.
    """
    problems: list[str] = []

    def check(label: str, value: object, pattern: re.Pattern[str], rule: str) -> None:
        _check(problems, label, value, pattern, rule, is_token)

    if isinstance(settings.bucket_names, str) or not settings.bucket_names:
        problems.append("bucket_names must be a non-empty list of bucket names")
    else:
        for name in settings.bucket_names:
            check(
                "bucket name",
                name,
                _BUCKET,
                "use 3-63 characters: lowercase letters, digits, '.' and '-', "
                "starting and ending with a letter or digit",
            )
        if len(set(settings.bucket_names)) != len(settings.bucket_names):
            problems.append(f"bucket_names has duplicates: {list(settings.bucket_names)}")
    for label, path in (("root_dir", settings.root_dir), ("install_dir", settings.install_dir)):
        check(label, path, _PATH, "use an absolute path of letters, digits, '.', '_' and '-'")
        if isinstance(path, str) and any(part in (".", "..") for part in path.split("/")):
            problems.append(f"{label} {path!r} is invalid: no '.' or '..' parts")
    if isinstance(settings.interval, bool) or not isinstance(settings.interval, int):
        problems.append(f"interval {settings.interval!r} is invalid: use whole seconds")
    elif settings.interval <= 0:
        problems.append(f"interval {settings.interval!r} is invalid: use a positive number")
    if isinstance(settings.stability, bool) or not isinstance(settings.stability, (int, float)):
        problems.append(f"stability {settings.stability!r} is invalid: use seconds")
    elif not 0 <= settings.stability < float("inf"):
        problems.append(f"stability {settings.stability!r} is invalid: use 0 or more")
    check("region", settings.region, _REGION, "use a region name such as 'eu-west-1'")
    check("writer_group", settings.writer_group, _GROUP, "use a Linux group name")
    for flag in settings.extra_flags:
        check(
            "extra flag",
            flag,
            _FLAG,
            "give each flag as one word without spaces or quotes, e.g. '--endpoint-url=URL'",
        )
    check("python", settings.python, _PYTHON, "use an interpreter name such as 'python3.11'")
    if settings.data_device:
        check("data_device", settings.data_device, _DEVICE, "use a device name /dev/sdf../dev/sdp")
    if settings.drain_hook is not None:
        hook = settings.drain_hook
        check("lifecycle hook name", hook.hook_name, _HOOK_NAME, "use letters, digits, '-_/'")
        check("group name", hook.group_name, _GROUP_NAME, "use letters, digits, '._-/'")
    for arn in settings.kms_key_arns:
        check("KMS key ARN", arn, _KMS_KEY_ARN, "use a key ARN: arn:aws:kms:REGION:ACCOUNT:key/ID")
    return problems


def validate(settings: UploaderSettings, *, is_token: Callable[[str], bool] = _never_token) -> None:
    """Raises InvalidSettingsError naming every invalid prop."""
    problems = settings_problems(settings, is_token=is_token)
    if problems:
        raise InvalidSettingsError("awscli-uploader: " + "; ".join(problems))


def _format_seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def placeholder_values(settings: UploaderSettings, wheel: WheelSource) -> dict[str, str]:
    """The value of every placeholder of the user-data template."""
    return {
        "WHEEL_S3_URL": wheel.s3_url,
        "WHEEL_NAME": wheel.name,
        "ASSET_REGION": wheel.region,
        "ROOT_DIR": settings.root_dir,
        "WRITER_GROUP": settings.writer_group,
        "INTERVAL": str(settings.interval),
        "STABILITY": _format_seconds(settings.stability),
        "REGION": settings.region,
        "EXTRA_FLAGS": " ".join(settings.extra_flags),
        "PYTHON": settings.python,
        "INSTALL_DIR": settings.install_dir,
        "DATA_DEVICE": settings.data_device,
        "LIFECYCLE_HOOK": settings.drain_hook.hook_name if settings.drain_hook else "",
        "AUTOSCALING_GROUP": settings.drain_hook.group_name if settings.drain_hook else "",
    }


def placeholders(text: str) -> set[str]:
    """The names of the `@NAME@` placeholders in a template."""
    return set(_PLACEHOLDER.findall(text))


def substitute(text: str, values: Mapping[str, str]) -> str:
    """Replaces every placeholder; a missing value or a single quote in one is an error."""
    missing = placeholders(text) - set(values)
    if missing:
        raise InvalidSettingsError(f"no value for placeholders {sorted(missing)}")
    for name, value in values.items():
        if "'" in value or "\n" in value:
            raise InvalidSettingsError(f"{name} {value!r} may not contain a quote or newline")
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def render_user_data(
    settings: UploaderSettings,
    wheel: WheelSource,
    *,
    is_token: Callable[[str], bool] = _never_token,
) -> str:
    """The bootstrap script for these settings, from the one template."""
    validate(settings, is_token=is_token)
    problems: list[str] = []
    for label, value, pattern in (
        ("wheel S3 URL", wheel.s3_url, _S3_URL),
        ("wheel file name", wheel.name, _WHEEL_NAME),
        ("asset region", wheel.region, _REGION),
    ):
        _check(problems, label, value, pattern, "not usable in the bootstrap script", is_token)
    if problems:
        raise InvalidSettingsError("awscli-uploader: " + "; ".join(problems))
    template = USER_DATA_TEMPLATE.read_text(encoding="utf-8")
    return substitute(template, placeholder_values(settings, wheel))


def unit_text(user_data: str) -> str:
    """The systemd unit that a bootstrap script (template or rendered) writes."""
    found = _UNIT_HEREDOC.search(user_data)
    if found is None:
        raise ValueError("no <<'UNIT' here-document in the user data")
    return found.group(1)


def without_comments(script: str) -> str:
    """The script without its whole-line comments (the shebang stays): they are for the
    reader of the template, and would take an eighth of EC2's 16 KB of user data."""
    lines = script.splitlines(keepends=True)
    return "".join(
        line for number, line in enumerate(lines) if number == 0 or not _COMMENT_LINE.match(line)
    )


def embed_commands(
    script: str, *, path: str = BOOTSTRAP_PATH, delimiter: str = "AWSCLI_UPLOADER_BOOTSTRAP"
) -> list[str]:
    """User-data lines that install a bootstrap script at `path` (its comment lines
    left out) and run it.

    The script runs as its own file, so its `set -euo pipefail` does not leak
    into the commands of the surrounding user data; if it fails, the user data
    stops there, before anything that relies on the uploader.
    """
    if f"\n{delimiter}\n" in f"\n{script}\n":
        raise ValueError(f"the script may not contain the line {delimiter}")
    return [
        f"cat > {path} <<'{delimiter}'",
        without_comments(script).rstrip("\n"),
        delimiter,
        f"chmod 0755 {path}",
        f"{path} || exit 1",
    ]


def kms_statement(kms_key_arns: Sequence[str]) -> dict[str, Any]:
    """Use of the customer keys of SSE-KMS buckets: a data key per upload, and decrypt
    for multipart uploads and the read-back that verifies an upload."""
    return {
        "Sid": "AwscliUploaderKms",
        "Effect": "Allow",
        "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
        "Resource": list(kms_key_arns),
    }


def policy_statements(
    bucket_names: Sequence[str], kms_key_arns: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """The template's IAM statements, each with its resources for every bucket, and with
    KMS keys, one statement for exactly those keys."""
    document = json.loads(POLICY_TEMPLATE.read_text(encoding="utf-8"))
    statements: list[dict[str, Any]] = document["Statement"]
    found = [
        {
            **statement,
            "Resource": [
                resource.replace(BUCKET_PLACEHOLDER, bucket)
                for resource in statement["Resource"]
                for bucket in bucket_names
            ],
        }
        for statement in statements
    ]
    return [*found, kms_statement(kms_key_arns)] if kms_key_arns else found


def policy_document(
    bucket_names: Sequence[str], kms_key_arns: Sequence[str] = ()
) -> dict[str, Any]:
    """The whole IAM policy document for these buckets (and keys)."""
    document = json.loads(POLICY_TEMPLATE.read_text(encoding="utf-8"))
    return {
        "Version": document["Version"],
        "Statement": policy_statements(bucket_names, kms_key_arns),
    }


def terminating_path_unit(root_dir: str) -> str:
    """The path unit that stops the coordinator once the daemon notes the instance's end."""
    return f"[Path]\nPathExists={root_dir}/{TERMINATING_NOTE}\nUnit={TERMINATING_TARGET}\n"


def coordinator_commands(root_dir: str, commands: Sequence[str]) -> list[str]:
    """User-data lines that write the coordinator's commands as a script with
    `S3_ROOT_DIR` exported, and start it once as its own unit, ordered after the
    uploader's (so it also stops first): the user data does not wait for it. With it
    starts a path unit that stops it when the daemon notes that the instance is going."""
    script = "\n".join(["#!/bin/bash", f"export S3_ROOT_DIR={shlex.quote(root_dir)}", *commands])
    for delimiter in ("AWSCLI_UPLOADER_COORDINATOR", "UNIT"):
        if f"\n{delimiter}\n" in f"\n{script}\n":
            raise ValueError(f"coordinator commands may not contain the line {delimiter}")
    return [
        f"cat > {COORDINATOR_PATH} <<'AWSCLI_UPLOADER_COORDINATOR'",
        script,
        "AWSCLI_UPLOADER_COORDINATOR",
        f"chmod 0755 {COORDINATOR_PATH}",
        f"cat > /etc/systemd/system/{COORDINATOR_SERVICE} <<'UNIT'",
        COORDINATOR_UNIT.rstrip("\n"),
        "UNIT",
        f"cat > /etc/systemd/system/{TERMINATING_PATH} <<'UNIT'",
        terminating_path_unit(root_dir).rstrip("\n"),
        "UNIT",
        f"cat > /etc/systemd/system/{TERMINATING_TARGET} <<'UNIT'",
        TERMINATING_TARGET_UNIT.rstrip("\n"),
        "UNIT",
        "systemctl daemon-reload",
        f"systemctl start --no-block {TERMINATING_PATH} {COORDINATOR_SERVICE}",
    ]
