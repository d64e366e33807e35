"""The start-up access check: can the AWS CLI reach S3 with these credentials?"""

from __future__ import annotations

import logging

from .awscli import AwsCli, ErrorKind, classify
from .errors import AccessError, AwsCliError

_ACCESS_HINTS = {
    ErrorKind.NO_CREDENTIALS: "no AWS credentials found: run `aws configure` "
    "(or `aws sso login`), or pass --profile",
    ErrorKind.BAD_CREDENTIALS: "AWS credentials are invalid or expired: run `aws configure` "
    "(or `aws sso login`) and try again",
    ErrorKind.UNREACHABLE: "AWS endpoint unreachable: check the network, --region and "
    "--endpoint-url",
}


def validate_access(cli: AwsCli, instance: str | None, logger: logging.Logger) -> None:
    """`aws sts get-caller-identity`: fatal on a laptop, logged and survived on EC2."""
    try:
        identity = cli.caller_identity()
    except AwsCliError as exc:
        hint = _ACCESS_HINTS.get(classify(exc.stderr), "AWS access check failed")
        if instance:
            logger.error("%s (%s); on EC2: going on, uploads retry", hint, exc.summary())
            return
        raise AccessError(f"{hint} ({exc.summary()})") from exc
    where = f"EC2 instance {instance}, instance role" if instance else "local AWS CLI credentials"
    logger.info("AWS access ok: %s (%s)", identity.get("Arn", "unknown identity"), where)
