"""Flags and environment into the one frozen Config: defaults, every variable, flags first."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path
from typing import Any

import click
import pytest

from awscli_uploader.cli import build_config, command
from awscli_uploader.config import Config
from awscli_uploader.ec2.imds import DEFAULT_ENDPOINT
from awscli_uploader.errors import ConfigError
from awscli_uploader.local.state import StateDir
from awscli_uploader.s3.settings import MultipartSettings


def config_from(args: list[str], monkeypatch: pytest.MonkeyPatch, **env: str) -> Config:
    """The Config the program would build from `args` and `env`, without running anything."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    ctx = command.make_context("awscli-uploader", list(args))
    return build_config(ctx.params, os.environ)


def fields(config: Config) -> dict[str, Any]:
    values = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    values["excludes"] = [pattern.text for pattern in config.excludes.patterns]
    values["bucket_map"] = list(config.bucket_map.pairs)
    return values


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_EC2_METADATA_DISABLED")
    assert fields(config_from([], monkeypatch)) == {
        "root": Path("output/s3"),
        "interval": 60.0,
        "stability": 2.0,
        "region": "eu-west-1",
        "profile": None,
        "endpoint_url": None,
        "aws_cli": "aws",
        "once": False,
        "dry_run": False,
        "imds_endpoint": DEFAULT_ENDPOINT,
        "imds_disabled": False,
        "connect_timeout": 10,
        "read_timeout": 60,
        "excludes": [],
        "bucket_map": [],
        "delete_empty_dirs": False,
        "metrics_file": None,
        "log_format": "text",
        "verbose": False,
        "if_exists": "overwrite",
        "max_upload_seconds": None,
        "stop_grace": 60.0,
        "lifecycle_hook": None,
        "autoscaling_group": None,
        "data_volume": None,
        "notify_socket": None,
        "stall_seconds": 300.0,
        "multipart": MultipartSettings(),
        "max_concurrency": 64,
        "layer_dir": Path(os.environ["XDG_RUNTIME_DIR"], "awscli-uploader"),  # conftest's
    }


def test_without_a_runtime_directory_the_layer_goes_to_a_users_own_in_tmp(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    monkeypatch.setenv("TMPDIR", "/var/tmp")
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() reads TMPDIR again
    expected = Path("/var/tmp", f"awscli-uploader-{os.geteuid()}")
    assert config_from([], monkeypatch).layer_dir == expected


@pytest.mark.parametrize(
    ("name", "value", "field", "expected"),
    [
        ("S3_UPLOAD_INTERVAL", "5", "interval", 5.0),
        ("S3_ROOT_DIR", "/data/s3", "root", Path("/data/s3")),
        ("FILE_STABILITY_SECONDS", "0.5", "stability", 0.5),
        ("AWS_REGION", "us-east-1", "region", "us-east-1"),
        ("AWS_PROFILE", "dev", "profile", "dev"),
        ("AWS_PROFILE", "", "profile", None),
        ("S3_ENDPOINT_URL", "http://127.0.0.1:5000", "endpoint_url", "http://127.0.0.1:5000"),
        ("S3_ENDPOINT_URL", "", "endpoint_url", None),
        ("AWS_CLI", "/opt/aws/bin/aws", "aws_cli", "/opt/aws/bin/aws"),
        ("S3_UPLOAD_IF_EXISTS", "keep", "if_exists", "keep"),
        ("S3_UPLOAD_MAX_SECONDS", "900", "max_upload_seconds", 900.0),
        ("S3_UPLOAD_DELETE_EMPTY_DIRS", "true", "delete_empty_dirs", True),
        ("S3_UPLOAD_DELETE_EMPTY_DIRS", "1", "delete_empty_dirs", True),
        ("S3_UPLOAD_DELETE_EMPTY_DIRS", "false", "delete_empty_dirs", False),
        ("S3_UPLOAD_DELETE_EMPTY_DIRS", "0", "delete_empty_dirs", False),
        ("S3_UPLOAD_METRICS_FILE", "/var/m.prom", "metrics_file", Path("/var/m.prom")),
        ("S3_UPLOAD_LOG_FORMAT", "json", "log_format", "json"),
        ("S3_UPLOAD_EXCLUDE", "*.tmp, *.part\n.*", "excludes", ["*.tmp", "*.part", ".*"]),
        ("S3_BUCKET_MAP", "a_b=a-b,c_d=c-d", "bucket_map", [("a_b", "a-b"), ("c_d", "c-d")]),
        ("AWS_EC2_METADATA_DISABLED", "TRUE", "imds_disabled", True),
        ("AWS_EC2_METADATA_DISABLED", "false", "imds_disabled", False),
        (
            "AWS_EC2_METADATA_SERVICE_ENDPOINT",
            "http://10.0.0.1",
            "imds_endpoint",
            "http://10.0.0.1",
        ),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", "", "imds_endpoint", DEFAULT_ENDPOINT),
        ("S3_UPLOAD_DATA_VOLUME", "/dev/sdf", "data_volume", "/dev/sdf"),
        ("S3_UPLOAD_DATA_VOLUME", "", "data_volume", None),
        ("NOTIFY_SOCKET", "/run/systemd/notify", "notify_socket", "/run/systemd/notify"),
        ("NOTIFY_SOCKET", "", "notify_socket", None),
    ],
)
def test_each_environment_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, field: str, expected: object
) -> None:
    env = {**GOES_WITH.get(name, {}), name: value}
    assert fields(config_from([], monkeypatch, **env))[field] == expected


# what a variable is refused without (tests/test_cli.py shows the refusal)
GOES_WITH = {
    "S3_UPLOAD_DATA_VOLUME": {
        "S3_UPLOAD_LIFECYCLE_HOOK": "drain",
        "S3_UPLOAD_AUTOSCALING_GROUP": "sim-uploader",
    }
}


@pytest.mark.parametrize(
    ("args", "name", "value", "field", "expected"),
    [
        (["-i", "3"], "S3_UPLOAD_INTERVAL", "5", "interval", 3.0),
        (["-d", "/flag"], "S3_ROOT_DIR", "/env", "root", Path("/flag")),
        (["-s", "0"], "FILE_STABILITY_SECONDS", "9", "stability", 0.0),
        (["--aws-cli", "/flag/aws"], "AWS_CLI", "/env/aws", "aws_cli", "/flag/aws"),
        (["--exclude", "*.a"], "S3_UPLOAD_EXCLUDE", "*.b,*.c", "excludes", ["*.a"]),  # not merged
        (["--bucket-map", "x_y=x-y"], "S3_BUCKET_MAP", "a_b=a-b", "bucket_map", [("x_y", "x-y")]),
        (["--log-format", "text"], "S3_UPLOAD_LOG_FORMAT", "json", "log_format", "text"),
    ],
)
def test_a_flag_beats_its_environment_variable(
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    name: str,
    value: str,
    field: str,
    expected: object,
) -> None:
    assert fields(config_from(args, monkeypatch, **{name: value}))[field] == expected


def test_flags_without_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    args = ["--once", "--dry-run", "-r", "ap-south-1", "-p", "ops", "--delete-empty-dirs"]
    config = config_from(args, monkeypatch)
    assert (config.once, config.dry_run, config.region, config.profile) == (
        True,
        True,
        "ap-south-1",
        "ops",
    )
    assert config.delete_empty_dirs is True
    empty = config_from(["-p", "", "--endpoint-url", ""], monkeypatch)
    assert (empty.profile, empty.endpoint_url) == (None, None)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"S3_UPLOAD_EXCLUDE": "/"}, "(--exclude or S3_UPLOAD_EXCLUDE)"),
        ({"S3_BUCKET_MAP": "no-equals"}, "(--bucket-map or S3_BUCKET_MAP)"),
    ],
)
def test_bad_filters_name_the_flag_and_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        config_from([], monkeypatch, **env)


def test_config_is_frozen_and_keeps_its_state_beside_the_files() -> None:
    config = Config(root=Path("/data/s3"))
    assert config.state == StateDir(Path("/data/s3"))
    assert config.state.path.parent == Path("/data/s3")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.root = Path("/elsewhere")  # type: ignore[misc]


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        ([], {}, 64),
        (["--max-concurrency", "128"], {}, 128),
        ([], {"S3_UPLOAD_MAX_CONCURRENCY": "32"}, 32),
        (["--max-concurrency", "4"], {"S3_UPLOAD_MAX_CONCURRENCY": "32"}, 4),
    ],
)
def test_max_concurrency(
    args: list[str], env: dict[str, str], expected: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert config_from(args, monkeypatch, **env).max_concurrency == expected


def test_max_concurrency_must_be_positive(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(click.BadParameter):
        config_from(["--max-concurrency", "0"], monkeypatch)
