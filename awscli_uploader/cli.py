"""Command line: flags and environment into one Config, errors into exit codes."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource
from click.shell_completion import CompletionItem

from . import __version__, log, status
from .access import check_endpoint_url, validate_access
from .config import (
    DEFAULT_INTERVAL,
    DEFAULT_REGION,
    DEFAULT_ROOT,
    DEFAULT_STABILITY,
    STATE_DIR_NAME,
    Config,
)
from .daemon import Daemon
from .errors import ConfigError, FatalError
from .filters import BucketMap, Excludes, FilterError, parse_bucket_map, parse_excludes, split_list
from .health import CredentialWatch, WatchedCli
from .imds import DEFAULT_ENDPOINT, Imds
from .progress import Progress, show_progress
from .report import Fanout, Reporter
from .uploader import ScanObserver, Uploader

PROG = "awscli-uploader"
F = TypeVar("F", bound=Callable[..., Any])
EXCLUDE_ENV = "S3_UPLOAD_EXCLUDE"
BUCKET_MAP_ENV = "S3_BUCKET_MAP"


def _complete_dir(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    return [CompletionItem(incomplete, type="dir")]


def _complete_file(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    return [CompletionItem(incomplete, type="file")]


_EXCLUDE = click.option(
    "--exclude",
    "exclude",
    metavar="PATTERN",
    multiple=True,
    help="Never upload or delete paths matching this glob, relative to the root: '*', '?' "
    "within a name, '**' across directories; without '/' it matches a name at any depth "
    "(e.g. '*.tmp', '*.part', '.*'). Repeatable "
    f"[env {EXCLUDE_ENV}, comma or newline separated].",
)
_BUCKET_MAP = click.option(
    "--bucket-map",
    "bucket_map",
    metavar="DIR=BUCKET",
    multiple=True,
    help="Upload the top-level directory DIR to BUCKET, for names S3 refuses "
    "(e.g. distributed_colony=distributed-colony). Repeatable "
    f"[env {BUCKET_MAP_ENV}, comma or newline separated].",
)


def _directory(help_text: str) -> Callable[[F], F]:
    return click.option(
        "-d",
        "--directory",
        default=DEFAULT_ROOT,
        show_default=True,
        envvar="S3_ROOT_DIR",
        shell_complete=_complete_dir,
        help=f"{help_text} [env S3_ROOT_DIR].",
    )


def _stability(help_text: str) -> Callable[[F], F]:
    return click.option(
        "-s",
        "--stability",
        type=click.FloatRange(min=0),
        default=DEFAULT_STABILITY,
        show_default=True,
        envvar="FILE_STABILITY_SECONDS",
        help=f"{help_text} [env FILE_STABILITY_SECONDS].",
    )


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
    _directory("Root directory: ROOT/<bucket>/<key...>"),
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
    _stability("Upload only files unchanged for more than this many seconds"),
    click.option("--once", is_flag=True, help="Scan once and exit (1 if any file failed)."),
    click.option("--dry-run", is_flag=True, help="Report what would happen; change nothing."),
    click.option(
        "--endpoint-url",
        default=None,
        envvar="S3_ENDPOINT_URL",
        help="S3-compatible endpoint (moto, MinIO) for every aws call [env S3_ENDPOINT_URL].",
    ),
    click.option(
        "--max-upload-seconds",
        type=click.FloatRange(min=0, min_open=True),
        default=None,
        envvar="S3_UPLOAD_MAX_SECONDS",
        help="End an upload call still running after this many seconds, even one that "
        "moves (default: never; a stalled one is ended after 5 minutes without progress) "
        "[env S3_UPLOAD_MAX_SECONDS].",
    ),
    click.option(
        "--aws-cli",
        default="aws",
        show_default=True,
        envvar="AWS_CLI",
        shell_complete=_complete_file,
        help="The AWS CLI executable [env AWS_CLI].",
    ),
    _EXCLUDE,
    _BUCKET_MAP,
    click.option(
        "--delete-empty-dirs",
        is_flag=True,
        envvar="S3_UPLOAD_DELETE_EMPTY_DIRS",
        help="After a scan, remove directories its uploads emptied (below the bucket "
        "directories; never one that gained a file) [env S3_UPLOAD_DELETE_EMPTY_DIRS].",
    ),
    click.option(
        "--metrics-file",
        metavar="PATH",
        default=None,
        envvar="S3_UPLOAD_METRICS_FILE",
        shell_complete=_complete_file,
        help="After every scan, write Prometheus metrics to PATH atomically, e.g. for "
        "node_exporter's textfile collector [env S3_UPLOAD_METRICS_FILE].",
    ),
    click.option(
        "--log-format",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        envvar="S3_UPLOAD_LOG_FORMAT",
        help="text: '[time] LEVEL message'; json: one object a line with time, level, "
        "message, bucket, key, bytes [env S3_UPLOAD_LOG_FORMAT].",
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
        excludes=excludes_from(params, environ),
        bucket_map=bucket_map_from(params, environ),
        delete_empty_dirs=params["delete_empty_dirs"],
        metrics_file=Path(params["metrics_file"]) if params["metrics_file"] else None,
        log_format=params["log_format"],
        max_upload_seconds=params["max_upload_seconds"],
    )


def excludes_from(params: Mapping[str, Any], environ: Mapping[str, str]) -> Excludes:
    """--exclude flags, else S3_UPLOAD_EXCLUDE; ConfigError on a pattern that can't work."""
    patterns = params["exclude"] or split_list(environ.get(EXCLUDE_ENV, ""))
    try:
        return parse_excludes(patterns)
    except FilterError as exc:
        raise ConfigError(f"{exc} (--exclude or {EXCLUDE_ENV})") from exc


def bucket_map_from(params: Mapping[str, Any], environ: Mapping[str, str]) -> BucketMap:
    """--bucket-map flags, else S3_BUCKET_MAP; ConfigError on a bad entry."""
    entries = params["bucket_map"] or split_list(environ.get(BUCKET_MAP_ENV, ""))
    try:
        return parse_bucket_map(entries)
    except FilterError as exc:
        raise ConfigError(f"{exc} (--bucket-map or {BUCKET_MAP_ENV})") from exc


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    invoke_without_command=True,
    subcommand_metavar="[status [--json]]",
)
@uploader_options
@click.version_option(__version__, prog_name=PROG)
def command(**params: Any) -> None:
    """Upload finished files under ROOT/<bucket>/<key> to S3 and delete each
    local copy once S3 holds the same bytes.

    `awscli-uploader status` shows the backlog, the daemon and its last scan."""
    if click.get_current_context().invoked_subcommand is not None:
        return
    config = build_config(params, os.environ)
    check_endpoint_url(config.endpoint_url)
    logger = log.setup(verbose=params["verbose"], fmt=config.log_format)
    check_root(config)
    check_metrics_file(config)
    cli = WatchedCli(
        executable=config.aws_cli,
        region=config.region,
        profile=config.profile,
        endpoint_url=config.endpoint_url,
        connect_timeout=config.connect_timeout,
        read_timeout=config.read_timeout,
        stall_seconds=config.stall_seconds,
        max_upload_seconds=config.max_upload_seconds,
    )
    logger.info("%s %s with %s", PROG, __version__, cli.resolve())
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug("%s", cli.version())
    imds = Imds(endpoint=config.imds_endpoint or DEFAULT_ENDPOINT, disabled=config.imds_disabled)
    instance = imds.instance_id()
    validate_access(cli, instance, logger)
    uploader = Uploader(config, cli, logger, observer=observer(config, cli.watch, logger))
    daemon = Daemon(config, uploader, logger, imds if instance else None)
    daemon.install_signal_handlers()
    if config.once:
        stats = daemon.run_once()
        if stats.failed:
            sys.exit(1)
    else:
        daemon.run_forever()


def observer(config: Config, watch: CredentialWatch, logger: logging.Logger) -> ScanObserver:
    """What each scan reports to: the status record and metrics, and a progress line."""
    observers: list[ScanObserver] = [Reporter(config, logger, watch)]
    tty = sys.stdout.isatty()
    if show_progress(once=config.once, tty=tty, log_format=config.log_format):
        observers.append(Progress(sys.stdout, logger))
    return Fanout(observers)


def check_metrics_file(config: Config) -> None:
    """The metrics file's directory must exist, and the file must not be under the root
    (it would be uploaded, or warned about every scan)."""
    path = config.metrics_file
    if path is None:
        return
    if path.is_dir():
        raise ConfigError(f"metrics file {path} is a directory (set --metrics-file)")
    if not path.parent.is_dir():
        raise ConfigError(f"metrics file directory {path.parent} does not exist")
    root = config.root.resolve()
    if root == path.parent.resolve() or root in path.parent.resolve().parents:
        raise ConfigError(f"metrics file {path} must be outside the root {config.root}")


_STATUS_OPTIONS = (
    _directory("Root directory"),
    _stability("Count files written more recently than this as not yet stable"),
    _EXCLUDE,
    _BUCKET_MAP,
    click.option("--json", "as_json", is_flag=True, help="One JSON object, for scripts."),
)


def status_options(func: F) -> F:
    for option in reversed(_STATUS_OPTIONS):
        func = option(func)
    return func


def inherit(ctx: click.Context, params: dict[str, Any]) -> dict[str, Any]:
    """Values given before `status` (`awscli-uploader -d DIR status`) unless given after it."""
    parent = ctx.parent
    if parent is None:
        return params
    merged = dict(params)
    for name in params:
        given_before = parent.get_parameter_source(name) is ParameterSource.COMMANDLINE
        given_after = ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE
        if given_before and not given_after:
            merged[name] = parent.params[name]
    return merged


@command.command(
    "status", short_help="Backlog, daemon and last scan of the root; no AWS access needed."
)
@status_options
def status_command(**params: Any) -> None:
    """Show the backlog per bucket (files, bytes, oldest, not yet stable), whether a
    daemon holds the root's lock, and its last scan. Needs no AWS access; takes no lock.

    Unless given here, the stability, excludes and bucket map are the ones the
    daemon recorded at its last scan."""
    ctx = click.get_current_context()
    params = inherit(ctx, params)
    root = Path(params["directory"])
    if not root.is_dir():
        problem = "is not a directory" if root.exists() else "does not exist"
        raise ConfigError(f"root {root} {problem} (set --directory or S3_ROOT_DIR)")
    recorded = status.recorded_settings(root / STATE_DIR_NAME)
    if not params["exclude"] and not os.environ.get(EXCLUDE_ENV):
        params["exclude"] = tuple(recorded.get("excludes") or ())
    if not params["bucket_map"] and not os.environ.get(BUCKET_MAP_ENV):
        params["bucket_map"] = tuple(recorded.get("bucket_map") or ())
    if not given(ctx, "stability") and isinstance(recorded.get("stability"), (int, float)):
        params["stability"] = float(recorded["stability"])
    config = Config(
        root=root,
        stability=params["stability"],
        excludes=excludes_from(params, os.environ),
        bucket_map=bucket_map_from(params, os.environ),
    )
    report = status.gather(config, now_ns=time.time_ns())
    click.echo(json.dumps(report, indent=2) if params["as_json"] else status.render_text(report))


def given(ctx: click.Context, name: str) -> bool:
    """Whether a parameter came from the command line or the environment, here or before."""
    explicit = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
    contexts = [ctx] if ctx.parent is None else [ctx, ctx.parent]
    return any(c.get_parameter_source(name) in explicit for c in contexts)


def check_root(config: Config) -> None:
    root = config.root
    if root.exists() and not root.is_dir():
        raise ConfigError(f"root {root} is not a directory (set --directory or S3_ROOT_DIR)")
    if config.once and not root.exists():
        raise ConfigError(f"root {root} does not exist (set --directory or S3_ROOT_DIR)")


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
