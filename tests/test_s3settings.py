"""The profile's `s3` settings read as the AWS CLI reads them, and the layouts it makes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import Moto, make_uploader, run_cli, tree, write
from layouts import LAYOUTS, MIB, layout_id, settings

from awscli_uploader.errors import ConfigError
from awscli_uploader.s3.settings import (
    Layout,
    MultipartSettings,
    adjusted_chunksize,
    expected_layout,
    parse_size,
    read_settings,
)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("64MB", 64 * MIB),  # MB is 1024**2 to the CLI
        ("5MiB", 5 * MIB),
        ("5mib", 5 * MIB),
        ("100mb", 100 * MIB),
        ("10000000", 10_000_000),
        ("1KB", 1024),
        ("2kib", 2048),
        ("1GB", 1024**3),
        ("1TiB", 1024**4),
        ("1", 1),
    ],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "MB", "1.5MB", "5M", "5B", "0", "-5MB", "0KB", "ten", "5ib"])
def test_parse_size_rejects_what_the_cli_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


@pytest.mark.parametrize(
    ("size", "chunksize", "chunk"),
    [
        (1, 8 * MIB, 8 * MIB),
        (80_000 * MIB, 8 * MIB, 8 * MIB),
        (80_000 * MIB + 1, 8 * MIB, 16 * MIB),
        (1, MIB, 5 * MIB),
        (50 * 1024 * MIB, MIB, 8 * MIB),  # doubled before raised to 5 MiB, not after
        (1, 6 * 1024 * MIB, 5 * 1024 * MIB),
    ],
)
def test_adjusted_chunksize(size: int, chunksize: int, chunk: int) -> None:
    assert adjusted_chunksize(size, chunksize) == chunk


@pytest.mark.parametrize(
    ("threshold", "chunksize", "size", "parts", "chunk"), LAYOUTS, ids=map(layout_id, LAYOUTS)
)
def test_expected_layout(threshold: int, chunksize: int, size: int, parts: int, chunk: int) -> None:
    assert expected_layout(size, settings(threshold, chunksize)) == Layout(parts, chunk)


def _read(tmp_path: Path, config: str, profile: str | None = None, **env: str) -> MultipartSettings:
    path = tmp_path / "config"
    path.write_text(config)
    environ = {"AWS_CONFIG_FILE": str(path), "HOME": str(tmp_path), **env}
    return read_settings(environ, profile)


NESTED = "s3 =\n  multipart_threshold = 5MB\n  multipart_chunksize = 64MB\n"
BIG = MultipartSettings(5 * MIB, 64 * MIB)


@pytest.mark.parametrize(
    ("config", "profile", "env", "expected"),
    [
        ("", None, {}, MultipartSettings()),
        (f"[default]\n{NESTED}", None, {}, BIG),
        (f"[default]\n{NESTED}", "other", {}, MultipartSettings()),
        (f"[profile big]\n{NESTED}", "big", {}, BIG),
        (f"[profile big]\n{NESTED}", None, {"AWS_DEFAULT_PROFILE": "big"}, BIG),
        (f"[profile 'big']\n{NESTED}", "big", {}, BIG),
        (f"[big]\n{NESTED}", "big", {}, MultipartSettings()),  # not a profile section
        (
            "[default]\ns3 =\n  multipart_chunksize = 10000000\n",
            None,
            {},
            MultipartSettings(chunksize=10_000_000),
        ),
        ("[default]\nS3 =\n  max_concurrent_requests = 4\n", None, {}, MultipartSettings()),
        (
            f"[default]\n{NESTED}[profile default]\ns3 =\n  multipart_chunksize = 16MB\n",
            None,
            {},
            MultipartSettings(chunksize=16 * MIB),
        ),
        (
            "[default]\ns3 =\n  preferred_transfer_client = crt\n",
            None,
            {},
            MultipartSettings(transfer_client="crt"),
        ),
    ],
)
def test_read_settings(
    tmp_path: Path,
    config: str,
    profile: str | None,
    env: dict[str, str],
    expected: MultipartSettings,
) -> None:
    assert _read(tmp_path, config, profile, **env) == expected


def test_credentials_file_overrides_the_s3_key(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.write_text("[big]\ns3 =\n  multipart_chunksize = 7MB\n")
    found = _read(
        tmp_path, f"[profile big]\n{NESTED}", "big", AWS_SHARED_CREDENTIALS_FILE=str(creds)
    )
    assert found == MultipartSettings(chunksize=7 * MIB)  # the whole s3 value is replaced


def test_config_file_path_expands_home_and_variables(tmp_path: Path) -> None:
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "config").write_text(f"[default]\n{NESTED}")
    expected = MultipartSettings(5 * MIB, 64 * MIB)
    assert read_settings({"HOME": str(tmp_path)}, None) == expected
    assert (
        read_settings({"AWS_CONFIG_FILE": "$DIR/.aws/config", "DIR": str(tmp_path)}, None)
        == expected
    )
    assert (
        read_settings({"AWS_CONFIG_FILE": str(tmp_path / "missing")}, None) == MultipartSettings()
    )


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            "[default]\ns3 =\n  multipart_chunksize = 1.5MB\n",
            "s3.multipart_chunksize: invalid size",
        ),
        (
            "[default]\ns3 =\n  multipart_threshold = 0\n",
            "s3.multipart_threshold: must be a positive",
        ),
        ("[default]\ns3 = 64MB\n", "`s3` must be a nested section"),
        ("[default]\ns3 =\n  multipart_chunksize\n", "is not `key = value`"),
        ("[default]\nregion = a\n[default]\n", "cannot parse"),
        ("region = a\n", "cannot parse"),
    ],
)
def test_malformed_settings_are_a_config_error(tmp_path: Path, config: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        _read(tmp_path, config)


ORACLE_CONFIGS = [
    "",
    f"[default]\n{NESTED}",
    f"[profile big]\n{NESTED}",
    f"[default]\n{NESTED}[profile default]\ns3 =\n  multipart_chunksize = 16mib\n",
    "[default]\ns3 =\n  multipart_threshold = 10000000\n  multipart_chunksize = 2GB\n",
    "[profile big]\ns3 =\n  multipart_threshold = 1kb\n",
]


@pytest.mark.parametrize("config", ORACLE_CONFIGS)
@pytest.mark.parametrize("profile", [None, "big"])
def test_reads_what_the_cli_v1_code_reads(tmp_path: Path, config: str, profile: str | None) -> None:
    """The CLI's own botocore session and RuntimeConfig are the oracle."""
    botocore_session = pytest.importorskip("botocore.session")
    transferconfig = pytest.importorskip("awscli.customizations.s3.transferconfig")
    path = tmp_path / "config"
    path.write_text(config)
    session = botocore_session.Session()
    session.set_config_variable("config_file", str(path))
    session.set_config_variable("credentials_file", str(tmp_path / "none"))
    if profile:
        session.set_config_variable("profile", profile)
    try:
        scoped = session.get_scoped_config().get("s3", {})
    except pytest.importorskip("botocore.exceptions").ProfileNotFound:
        scoped = {}  # the CLI fails; we use the defaults
    runtime = transferconfig.RuntimeConfig().build_config(**scoped)
    ours = read_settings({"AWS_CONFIG_FILE": str(path)}, profile)
    assert (ours.threshold, ours.chunksize) == (
        runtime["multipart_threshold"],
        runtime["multipart_chunksize"],
    )


SAMPLE = {  # key: (size, parts in the ETag, None for one PUT) under 5MB / 64MB
    "one-put.bin": (5 * MIB - 1, None),
    "at-threshold.bin": (5 * MIB, 1),
    "issue-23mib.bin": (23 * MIB + 5, 1),
}


@pytest.mark.slow
def test_real_cli_uploads_are_proven_under_the_profile_settings(
    root: Path, moto: Moto, aws_cli: str
) -> None:
    """The issue's profile (5MB threshold, 64MB chunks): uploaded once, proven, deleted."""
    Path(os.environ["AWS_CONFIG_FILE"]).write_text(f"[default]\n{NESTED}")
    moto.create_bucket("mp-bucket")
    data = {key: os.urandom(size) for key, (size, _) in SAMPLE.items()}
    for key, body in data.items():
        write(root / "mp-bucket" / key, body)
    multipart = read_settings(os.environ, None)
    stats = make_uploader(root, moto, aws_cli, multipart=multipart).scan_once()
    assert (stats.uploaded, stats.failed) == (3, 0)
    assert tree(root) == []
    for key, (_, parts) in SAMPLE.items():
        etag = str(moto.head("mp-bucket", key)["ETag"]).strip('"')
        assert etag.partition("-")[2] == ("" if parts is None else str(parts)), key
    write(root / "mp-bucket" / "issue-23mib.bin", data["issue-23mib.bin"])
    again = make_uploader(root, moto, aws_cli, multipart=multipart).scan_once()
    assert (again.present, again.uploaded, again.failed) == (1, 0, 0)


@pytest.mark.slow
def test_chunk_size_in_bytes_through_the_command_line(root: Path, moto: Moto, aws_cli: str) -> None:
    """--profile picks the `[profile NAME]` section; 10000000-byte parts are proven."""
    Path(os.environ["AWS_CONFIG_FILE"]).write_text(
        "[profile bytes]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
        "s3 =\n  multipart_chunksize = 10000000\n"
    )
    moto.create_bucket("bytes-bucket")
    write(root / "bytes-bucket" / "f.bin", os.urandom(20 * MIB))
    args = ["--once", "-d", str(root), "-s", "1", "--profile", "bytes"]
    result = run_cli(*args, "--endpoint-url", moto.url, env={"AWS_CLI": aws_cli})
    assert result.returncode == 0, result.stdout + result.stderr
    assert tree(root) == []
    assert str(moto.head("bytes-bucket", "f.bin")["ETag"]).endswith('-3"')


def test_malformed_size_exits_2_with_one_line(root: Path) -> None:
    Path(os.environ["AWS_CONFIG_FILE"]).write_text("[default]\ns3 =\n  multipart_chunksize = 64M\n")
    result = run_cli("--once", "-d", str(root))
    assert result.returncode == 2
    assert "s3.multipart_chunksize: invalid size value: '64M'" in result.stderr
    assert "Traceback" not in result.stderr
