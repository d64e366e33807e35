"""The wiring: from one Config to a running daemon (or one scan), and its exit code."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

from . import __version__
from .config import PROG, Config
from .daemon import Daemon
from .ec2.imds import DEFAULT_ENDPOINT, Imds
from .errors import ConfigError
from .local import lease
from .local.lock import refuse_if_held
from .ops import log
from .ops.progress import Progress, show_progress
from .ops.report import Fanout, Reporter
from .s3.access import check_endpoint_url, validate_access
from .s3.awscli import MAX_PUT_BYTES
from .s3.health import CredentialWatch, WatchedCli
from .s3.layer_dir import clean
from .scan.record import ScanObserver
from .scan.uploader import Uploader

IMDS_TRIES = 10  # with --lifecycle-hook, a second apart


def run(config: Config) -> int:
    """Check the config, the AWS CLI and access, then scan once or forever.

    Returns the exit code: 1 when a `--once` scan failed a file, else 0.
    """
    check_endpoint_url(config.endpoint_url)
    logger = log.setup(verbose=config.verbose, fmt=config.log_format)
    check_root(config)
    check_metrics_file(config)
    refuse_if_held(config.state)  # before any aws call: a second daemon is refused at once
    cli = WatchedCli(
        executable=config.aws_cli,
        region=config.region,
        profile=config.profile,
        endpoint_url=config.endpoint_url,
        connect_timeout=config.connect_timeout,
        read_timeout=config.read_timeout,
        stall_seconds=config.stall_seconds,
        max_upload_seconds=config.max_upload_seconds,
        layers=private_layer_dir(config, logger),
    )
    logger.info("%s %s with %s", PROG, __version__, cli.resolve())
    lease.ignore_break_signal()
    logger.info("open-writer guard: %s", lease.describe())
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug("%s", cli.version())
    imds = Imds(endpoint=config.imds_endpoint or DEFAULT_ENDPOINT, disabled=config.imds_disabled)
    instance = imds.instance_id()
    for _ in range(IMDS_TRIES if config.lifecycle_hook and instance is None else 0):
        time.sleep(1.0)  # a drain hook waits on this instance: EC2 must not be missed
        instance = imds.instance_id()
    if config.lifecycle_hook and instance is None:
        logger.error(
            "--lifecycle-hook %s: no EC2 metadata service answers; the hook can't be completed",
            config.lifecycle_hook,
        )
    validate_access(cli, instance, logger)
    uploader = Uploader(config, cli, logger, observer=observer(config, cli.watch, logger))
    say_keep(uploader, logger)
    daemon = Daemon(config, uploader, logger, imds if instance else None)
    daemon.install_signal_handlers()
    if config.once:
        return 1 if daemon.run_once().failed else 0
    daemon.run_forever()
    return 0


def observer(config: Config, watch: CredentialWatch, logger: logging.Logger) -> ScanObserver:
    """What each scan reports to: the status record and metrics, and a progress line."""
    observers: list[ScanObserver] = [Reporter(config, logger, watch)]
    tty = sys.stdout.isatty()
    if show_progress(once=config.once, tty=tty, log_format=config.log_format):
        observers.append(Progress(sys.stdout, logger))
    return Fanout(observers)


ON_ENDPOINT = (
    " where the store honours If-None-Match (S3 does; some S3-compatible stores ignore it, and"
    " then another writer's key can be overwritten)"
)


def say_keep(uploader: Uploader, logger: logging.Logger) -> None:
    """Under --if-exists keep, say once whether a key another writer creates between the
    lookup and the upload is safe (a conditional put) or may be overwritten."""
    if not uploader.keep:
        return
    if uploader.conditional:
        logger.info(
            "--if-exists keep: uploads create only (put-object --if-none-match, up to %d GiB "
            "a file): a key another writer creates meanwhile is never overwritten%s",
            MAX_PUT_BYTES // 1024**3,
            ON_ENDPOINT if uploader.config.endpoint_url else "",
        )
        return
    logger.warning(
        "--if-exists keep: this AWS CLI has no put-object --if-none-match (S3's conditional "
        "writes, August 2024): keys are looked up, then uploaded with s3 cp, so a key another "
        "writer creates in between is overwritten; use a newer AWS CLI to close that race",
    )


def private_layer_dir(config: Config, logger: logging.Logger) -> Path | None:
    """The private directory for the transfer layer, its dead processes' leftovers
    removed; None, said once, when it is not private (the CLI's default then)."""
    path = config.layer_dir
    if path is None:
        return None
    try:
        clean(path)
    except OSError as exc:
        logger.warning(
            "no private directory for the AWS CLI's transfer settings (%s): upload calls run "
            "with the CLI's default of 10 requests in flight; remove it or set XDG_RUNTIME_DIR "
            "to a directory of this user's",
            exc,
        )
        return None
    return path


def check_root(config: Config) -> None:
    root = config.root
    if root.exists() and not root.is_dir():
        raise ConfigError(f"root {root} is not a directory (set --directory or S3_ROOT_DIR)")
    if config.once and not root.exists():
        raise ConfigError(f"root {root} does not exist (set --directory or S3_ROOT_DIR)")


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
