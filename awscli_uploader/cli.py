"""Command line: flags and environment into one Config, errors into exit codes."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from . import __version__
from .config import PROG, Config
from .ec2.imds import DEFAULT_ENDPOINT
from .errors import ConfigError, FatalError
from .local.filters import (
    BucketMap,
    Excludes,
    FilterError,
    parse_bucket_map,
    parse_excludes,
    split_list,
)
from .local.state import StateDir
from .ops import status
from .options import BUCKET_MAP_ENV, EXCLUDE_ENV, status_options, uploader_options
from .s3.layer_dir import private_dir
from .s3.settings import read_settings


def build_config(params: Mapping[str, Any], environ: Mapping[str, str]) -> Config:
    """The one Config, from parsed flags and the environment."""
    hook, group = lifecycle_from(params)
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
        verbose=params["verbose"],
        if_exists=params["if_exists"],
        max_upload_seconds=params["max_upload_seconds"],
        stop_grace=params["stop_grace"],
        max_concurrency=params["max_concurrency"],
        lifecycle_hook=hook,
        autoscaling_group=group,
        data_volume=params["data_volume"] or None,
        notify_socket=environ.get("NOTIFY_SOCKET") or None,
        layer_dir=private_dir(environ, tmp=tempfile.gettempdir(), uid=os.geteuid()),
        multipart=read_settings(environ, params["profile"] or None),
    )


def lifecycle_from(params: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """--lifecycle-hook and --autoscaling-group: both or neither; --data-volume only with
    them (only the drain that completes the hook releases the volume)."""
    hook, group = params["lifecycle_hook"] or None, params["autoscaling_group"] or None
    if (hook is None) != (group is None):
        raise ConfigError(
            "--lifecycle-hook and --autoscaling-group go together (S3_UPLOAD_LIFECYCLE_HOOK, "
            "S3_UPLOAD_AUTOSCALING_GROUP): set both, or neither"
        )
    if params["data_volume"] and hook is None:
        raise ConfigError(
            "--data-volume (S3_UPLOAD_DATA_VOLUME) needs --lifecycle-hook and "
            "--autoscaling-group: only the drain that completes the hook releases the volume"
        )
    return hook, group


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
    from .run import run  # here: `status` needs neither the AWS CLI nor the daemon

    sys.exit(run(config))


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
    params = with_recorded(
        params,
        status.recorded_settings(StateDir(root)),
        env_given={name for name in (EXCLUDE_ENV, BUCKET_MAP_ENV) if os.environ.get(name)},
        stability_given=given(ctx, "stability"),
    )
    config = Config(
        root=root,
        stability=params["stability"],
        excludes=excludes_from(params, os.environ),
        bucket_map=bucket_map_from(params, os.environ),
    )
    report = status.gather(config, now_ns=time.time_ns())
    click.echo(json.dumps(report, indent=2) if params["as_json"] else status.render_text(report))


def with_recorded(
    params: dict[str, Any],
    recorded: dict[str, Any],
    *,
    env_given: set[str],
    stability_given: bool,
) -> dict[str, Any]:
    """`status` settings: a flag, else the environment, else what the daemon recorded at
    its last scan, so that the backlog is counted as the daemon counts it."""
    merged = dict(params)
    if not merged["exclude"] and EXCLUDE_ENV not in env_given:
        merged["exclude"] = tuple(recorded.get("excludes") or ())
    if not merged["bucket_map"] and BUCKET_MAP_ENV not in env_given:
        merged["bucket_map"] = tuple(recorded.get("bucket_map") or ())
    if not stability_given and isinstance(recorded.get("stability"), (int, float)):
        merged["stability"] = float(recorded["stability"])
    return merged


def given(ctx: click.Context, name: str) -> bool:
    """Whether a parameter came from the command line or the environment, here or before."""
    explicit = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
    contexts = [ctx] if ctx.parent is None else [ctx, ctx.parent]
    return any(c.get_parameter_source(name) in explicit for c in contexts)


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
