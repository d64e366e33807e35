"""Command line: flags and environment into one Config, errors into exit codes."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from . import __version__, log
from .awscli import AwsCli, ErrorKind, classify
from .config import DEFAULT_INTERVAL, DEFAULT_REGION, DEFAULT_ROOT, DEFAULT_STABILITY, Config
from .daemon import Daemon
from .errors import AccessError, AwsCliError, ConfigError, FatalError
from .imds import DEFAULT_ENDPOINT, Imds
from .uploader import Uploader

PROG = "awscli-uploader"
F = TypeVar("F", bound=Callable[..., Any])

_OPTIONS = (
    click.option(
        "-i",
        "--interval",
        type=click.FloatRange(min=0, min_open=True),
        default=DEFAULT_INTERVAL,
        show_default=True,
        envvar="S3_UPLOAD_INTERVAL",
        help="Seconds between scans [env S3_UPLOAD_INTERVAL].",
    ),
    click.option(
        "-d",
        "--directory",
        default=DEFAULT_ROOT,
        show_default=True,
        envvar="S3_ROOT_DIR",
        help="Root directory: ROOT/<bucket>/<key...> [env S3_ROOT_DIR].",
    ),
    click.option(
        "-r",
        "--region",
        default=DEFAULT_REGION,
        show_default=True,
        envvar="AWS_REGION",
        help="AWS region [env AWS_REGION].",
    ),
    click.option(
        "-p",
        "--profile",
        default=None,
        envvar="AWS_PROFILE",
        help="AWS CLI profile [env AWS_PROFILE].",
    ),
    click.option(
        "-s",
        "--stability",
        type=click.FloatRange(min=0),
        default=DEFAULT_STABILITY,
        show_default=True,
        envvar="FILE_STABILITY_SECONDS",
        help="Upload only files unchanged for more than this many seconds "
        "[env FILE_STABILITY_SECONDS].",
    ),
    click.option("--once", is_flag=True, help="Scan once and exit (1 if any file failed)."),
    click.option("--dry-run", is_flag=True, help="Report what would happen; change nothing."),
    click.option(
        "--endpoint-url",
        default=None,
        envvar="S3_ENDPOINT_URL",
        help="S3-compatible endpoint (moto, MinIO) for every aws call [env S3_ENDPOINT_URL].",
    ),
    click.option(
        "--aws-cli",
        default="aws",
        show_default=True,
        envvar="AWS_CLI",
        help="The AWS CLI executable [env AWS_CLI].",
    ),
    click.option("-v", "--verbose", is_flag=True, help="Log debug lines too."),
)


def uploader_options(func: F) -> F:
    for option in reversed(_OPTIONS):
        func = option(func)
    return func


def build_config(params: Mapping[str, Any], environ: Mapping[str, str]) -> Config:
    """The one Config, from parsed flags and the environment."""
    return Config(
        root=Path(params["directory"]),
        interval=params["interval"],
        stability=params["stability"],
        region=params["region"],
        profile=params["profile"] or None,
        endpoint_url=params["endpoint_url"] or None,
        aws_cli=params["aws_cli"],
        once=params["once"],
        dry_run=params["dry_run"],
        imds_endpoint=environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT") or DEFAULT_ENDPOINT,
        imds_disabled=environ.get("AWS_EC2_METADATA_DISABLED", "").lower() == "true",
    )


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@uploader_options
@click.version_option(__version__, prog_name=PROG)
def command(**params: Any) -> None:
    """Upload finished files under ROOT/<bucket>/<key> to S3 and delete each
    local copy once S3 holds the same bytes."""
    config = build_config(params, os.environ)
    logger = log.setup(verbose=params["verbose"])
    check_root(config)
    cli = AwsCli(
        executable=config.aws_cli,
        region=config.region,
        profile=config.profile,
        endpoint_url=config.endpoint_url,
        connect_timeout=config.connect_timeout,
        read_timeout=config.read_timeout,
    )
    logger.info("%s %s with %s", PROG, __version__, cli.version())
    imds = Imds(endpoint=config.imds_endpoint or DEFAULT_ENDPOINT, disabled=config.imds_disabled)
    instance = imds.instance_id()
    validate_access(cli, instance, logger)
    daemon = Daemon(config, Uploader(config, cli, logger), logger, imds if instance else None)
    daemon.install_signal_handlers()
    if config.once:
        stats = daemon.run_once()
        if stats.failed:
            sys.exit(1)
    else:
        daemon.run_forever()


def check_root(config: Config) -> None:
    root = config.root
    if root.exists() and not root.is_dir():
        raise ConfigError(f"root {root} is not a directory (set --directory or S3_ROOT_DIR)")
    if config.once and not root.exists():
        raise ConfigError(f"root {root} does not exist (set --directory or S3_ROOT_DIR)")


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


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: every error ends as one line on stderr and its exit code."""
    try:
        command.main(args=argv, prog_name=PROG, standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        click.echo(f"{PROG}: error: {exc.format_message()} (see --help)", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        click.echo(f"{PROG}: error: {exc.format_message()}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        sys.exit(130)
    except FatalError as exc:
        click.echo(f"{PROG}: error: {exc}", err=True)
        sys.exit(exc.exit_code)
