"""The start-up checks of AWS access: the endpoint flag, then one aws call that needs valid
credentials (`sts get-caller-identity` on AWS; with --endpoint-url an S3 call, as
S3-compatible stores such as MinIO or s3rver have no STS)."""

from __future__ import annotations

import logging
import os
import re
from urllib.parse import urlsplit

from ..errors import AccessError, AwsCliError, ConfigError
from .awscli import AwsCli, ErrorKind, classify

_ACCESS_HINTS = {
    ErrorKind.NO_CREDENTIALS: "no AWS credentials found: run `aws configure` "
    "(or `aws sso login`), or pass --profile",
    ErrorKind.BAD_CREDENTIALS: "AWS credentials are invalid or expired: run `aws configure` "
    "(or `aws sso login`) and try again",
    ErrorKind.UNREACHABLE: "AWS endpoint unreachable: check the network, --region and "
    "--endpoint-url",
}
_PROFILE = re.compile(r"The config profile \((.*?)\) could not be found")


def check_endpoint_url(url: str | None) -> None:
    """An --endpoint-url must be an http(s) URL with a host: a bad one is a bad flag
    (exit 2, before any aws call), not a failed access check."""
    if url is None:
        return
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        parts = parts._replace(netloc="")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"endpoint URL {url!r} is not an http:// or https:// URL with a host, "
            "e.g. http://127.0.0.1:9000 (set --endpoint-url or S3_ENDPOINT_URL)"
        )


def access_hint(kind: ErrorKind, stderr: str, *, config_file: str) -> str:
    """What went wrong and what to do, for one failed access check."""
    if kind is ErrorKind.NO_PROFILE:
        found = _PROFILE.search(stderr)
        name = found.group(1) if found else "?"
        return (
            f"AWS profile {name!r} does not exist: create it with "
            f"`aws configure --profile {name}` (or add [profile {name}] to {config_file}), "
            "or pass another --profile"
        )
    return _ACCESS_HINTS.get(kind, "AWS access check failed")


def validate_access(cli: AwsCli, instance: str | None, logger: logging.Logger) -> None:
    """One aws call that needs valid credentials: fatal on a laptop, logged and survived
    on EC2."""
    try:
        who = _prove(cli)
    except AwsCliError as exc:
        config_file = os.environ.get("AWS_CONFIG_FILE") or "~/.aws/config"
        hint = access_hint(classify(exc.stderr), exc.stderr, config_file=config_file)
        if instance:
            logger.error("%s (%s); on EC2: going on, uploads retry", hint, exc.summary())
            return
        raise AccessError(f"{hint} ({exc.summary()})") from exc
    where = f"EC2 instance {instance}, instance role" if instance else "local AWS CLI credentials"
    logger.info("AWS access ok: %s (%s)", who, where)


def _prove(cli: AwsCli) -> str:
    if cli.endpoint_url is None:
        return str(cli.caller_identity().get("Arn", "unknown identity"))
    try:
        buckets = cli.list_buckets()
    except AwsCliError as exc:
        if classify(exc.stderr) is not ErrorKind.ACCESS_DENIED:
            raise
        # authentication comes before authorization: a denied action proves the keys
        return f"{cli.endpoint_url} accepted the credentials (list-buckets denied)"
    return f"{cli.endpoint_url} lists {len(buckets)} buckets"
