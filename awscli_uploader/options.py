"""The command line's options, defined once and stacked onto the commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click
from click.shell_completion import CompletionItem

from .config import (
    DEFAULT_CONCURRENCY,
    DEFAULT_INTERVAL,
    DEFAULT_REGION,
    DEFAULT_ROOT,
    DEFAULT_STABILITY,
    DEFAULT_STOP_GRACE,
)

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
        "--max-concurrency",
        type=click.IntRange(min=1),
        default=DEFAULT_CONCURRENCY,
        show_default=True,
        envvar="S3_UPLOAD_MAX_CONCURRENCY",
        help="Requests the AWS CLI keeps in flight for an upload of many small files (its "
        "own default is 10); a max_concurrent_requests in the profile's s3 section wins "
        "[env S3_UPLOAD_MAX_CONCURRENCY].",
    ),
    click.option(
        "--stop-grace",
        type=click.FloatRange(min=0),
        default=DEFAULT_STOP_GRACE,
        show_default=True,
        envvar="S3_UPLOAD_STOP_GRACE",
        help="After SIGTERM or SIGINT, seconds the uploads under way may take to finish; then "
        "they are cancelled cleanly and their files stay [env S3_UPLOAD_STOP_GRACE].",
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
    click.option(
        "--if-exists",
        type=click.Choice(["overwrite", "keep"]),
        default="overwrite",
        show_default=True,
        envvar="S3_UPLOAD_IF_EXISTS",
        help="When S3 already holds other content under a file's key: overwrite it (logged "
        "as a warning), or keep the local file and log an error [env S3_UPLOAD_IF_EXISTS].",
    ),
    click.option(
        "--lifecycle-hook",
        metavar="NAME",
        default=None,
        envvar="S3_UPLOAD_LIFECYCLE_HOOK",
        help="On EC2 in an Auto Scaling group: the termination hook to complete once the "
        "backlog is drained, with --autoscaling-group [env S3_UPLOAD_LIFECYCLE_HOOK].",
    ),
    click.option(
        "--autoscaling-group",
        metavar="NAME",
        default=None,
        envvar="S3_UPLOAD_AUTOSCALING_GROUP",
        help="The Auto Scaling group of --lifecycle-hook [env S3_UPLOAD_AUTOSCALING_GROUP].",
    ),
    click.option(
        "--data-volume",
        metavar="DEVICE",
        default=None,
        envvar="S3_UPLOAD_DATA_VOLUME",
        help="With --lifecycle-hook: the EBS device of the root (as the launch template names "
        "it, /dev/sdf), set to be deleted with the instance once the drain is complete, just "
        "before the hook is; a volume kept on termination is then kept only when files may "
        "be left on it [env S3_UPLOAD_DATA_VOLUME].",
    ),
    click.option("-v", "--verbose", is_flag=True, help="Log debug lines too."),
)


def uploader_options(func: F) -> F:
    for option in reversed(_OPTIONS):
        func = option(func)
    return func


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
