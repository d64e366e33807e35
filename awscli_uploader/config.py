"""The one configuration object, built once by the CLI layer and passed explicitly."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .local.filters import BucketMap, Excludes
from .local.state import StateDir
from .s3.layer import DEFAULT_CONCURRENCY as DEFAULT_CONCURRENCY
from .s3.settings import MultipartSettings
from .s3.watchdog import STALL_SECONDS

PROG = "awscli-uploader"
DEFAULT_INTERVAL = 60.0
DEFAULT_ROOT = "output/s3"
DEFAULT_REGION = "eu-west-1"
DEFAULT_STABILITY = 2.0
DEFAULT_STOP_GRACE = 60.0  # well under systemd's TimeoutStopSec of the unit (infra/)


@dataclass(frozen=True)
class Config:
    root: Path
    interval: float = DEFAULT_INTERVAL
    stability: float = DEFAULT_STABILITY
    region: str = DEFAULT_REGION
    profile: str | None = None
    endpoint_url: str | None = None
    aws_cli: str = "aws"
    once: bool = False
    dry_run: bool = False
    imds_endpoint: str | None = None
    imds_disabled: bool = False
    connect_timeout: int = 10
    read_timeout: int = 60
    stall_seconds: float = STALL_SECONDS  # an upload with no I/O this long is ended
    max_upload_seconds: float | None = None  # the operator's hard cap on one upload call
    stop_grace: float = DEFAULT_STOP_GRACE  # after SIGTERM, uploads under way may finish
    excludes: Excludes = field(default_factory=Excludes)
    bucket_map: BucketMap = field(default_factory=BucketMap)
    delete_empty_dirs: bool = False
    metrics_file: Path | None = None
    log_format: str = "text"
    verbose: bool = False
    if_exists: str = "overwrite"  # or "keep": never overwrite an object with other content
    multipart: MultipartSettings = field(default_factory=MultipartSettings)  # profile's `s3`
    max_concurrency: int = DEFAULT_CONCURRENCY  # requests in flight for many small files
    lifecycle_hook: str | None = None  # an Auto Scaling termination hook waits on the drain
    autoscaling_group: str | None = None  # its group
    data_volume: str | None = None  # the root's EBS device: deleted with the instance once drained
    notify_socket: str | None = None  # systemd's NOTIFY_SOCKET: told READY=1 once scans begin
    layer_dir: Path | None = None  # private, off the root: the transfer layer (s3/layer.py)

    @property
    def state(self) -> StateDir:
        """Lock, staging links, trash and status: `ROOT/.awscli-uploader`."""
        return StateDir(self.root)
