"""The profile's `s3` transfer settings, read the way the AWS CLI reads them, and the
part layout the CLI's `s3 cp` gives a file under them.

The CLI (v1, and v2 up to its CRT client) takes `multipart_threshold` and
`multipart_chunksize` from the nested `s3` key of the profile's section in the
config file (`[default]` or `[profile NAME]`; a `[NAME]` section of the
credentials file overrides the key), parses `64MB`, `5MiB` or plain bytes with
"MB" meaning 1024**2, and hands them to s3transfer: a file of at least the
threshold is a multipart upload (a file smaller than one chunk is one part),
its chunk size doubled while it would need more than 10,000 parts, then held
within 5 MiB..5 GiB. Sources: awscli/customizations/s3/transferconfig.py and
utils.human_readable_to_bytes, botocore's configloader and Session.full_config,
s3transfer's upload.py and utils.ChunksizeAdjuster.
"""

from __future__ import annotations

import configparser
import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from ..errors import ConfigError

MIB = 1024 * 1024
DEFAULT_SIZE = 8 * MIB  # the CLI's default threshold and chunk size
MIN_PART = 5 * MIB
MAX_PART = 5 * 1024 * MIB
MAX_PARTS = 10_000
SIZE_SUFFIX = {
    "kb": 1024,
    "mb": 1024**2,
    "gb": 1024**3,
    "tb": 1024**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
# transfer clients whose layout is the s3transfer one computed here ("classic" is
# v2's later name for "default"; "auto" and "crt" may use the CRT's own layout)
CLASSIC_CLIENTS = frozenset({"default", "classic"})
_VAR = re.compile(r"\$(\w+|\{[^}]*\})", re.ASCII)


@dataclass(frozen=True)
class MultipartSettings:
    threshold: int = DEFAULT_SIZE
    chunksize: int = DEFAULT_SIZE
    transfer_client: str = "default"  # v2's preferred_transfer_client

    @property
    def exact(self) -> bool:
        """Whether `expected_layout` is certainly the layout the CLI uploads with."""
        return self.transfer_client in CLASSIC_CLIENTS


class Layout(NamedTuple):
    """How the CLI uploads a file: `parts` None for one PUT (ETag: the MD5 of the bytes)."""

    parts: int | None
    chunk: int


def parse_size(text: str) -> int:
    """`64MB`, `5MiB`, `10000000` to bytes as the CLI does; ValueError unless positive."""
    value = text.lower()
    suffix = value[-3:] if value[-2:] == "ib" else value[-2:]
    number, unit = value, 1
    if len(value) >= 2 and suffix in SIZE_SUFFIX:
        number, unit = value[: -len(suffix)], SIZE_SUFFIX[suffix]
    try:
        size = int(number) * unit
    except ValueError:
        raise ValueError(f"invalid size value: {text!r}") from None
    if size <= 0:
        raise ValueError(f"must be a positive size: {text!r}")
    return size


def adjusted_chunksize(size: int, chunksize: int) -> int:
    """s3transfer's ChunksizeAdjuster: double past 10,000 parts, then clamp to 5 MiB..5 GiB."""
    chunk = chunksize
    while -(-size // chunk) > MAX_PARTS:
        chunk *= 2
    return min(max(chunk, MIN_PART), MAX_PART)


def expected_layout(size: int, settings: MultipartSettings) -> Layout:
    """The layout `aws s3 cp` gives `size` bytes: one PUT below the threshold, else parts
    of the adjusted chunk size (one part when the file is smaller than a chunk)."""
    if size < settings.threshold:
        return Layout(None, size)
    chunk = adjusted_chunksize(size, settings.chunksize)
    return Layout(max(1, -(-size // chunk)), chunk)


def settings_from(s3: object, where: str) -> MultipartSettings:
    """The settings from a profile's parsed `s3` value; ConfigError naming `where` on a
    value the CLI would reject."""
    if s3 is None:
        return MultipartSettings()
    if not isinstance(s3, Mapping):
        raise ConfigError(f"{where}: `s3` must be a nested section (`s3 =` then indented lines)")
    found: dict[str, int] = {}
    for name in ("multipart_threshold", "multipart_chunksize"):
        raw = s3.get(name)
        if raw is None:
            continue
        try:
            found[name] = parse_size(str(raw))
        except ValueError as exc:
            raise ConfigError(
                f"{where}: s3.{name}: {exc}; use bytes or a size like 8MB or 5MiB"
            ) from None
    return MultipartSettings(
        threshold=found.get("multipart_threshold", DEFAULT_SIZE),
        chunksize=found.get("multipart_chunksize", DEFAULT_SIZE),
        transfer_client=str(s3.get("preferred_transfer_client", "default")),
    )


def read_settings(environ: Mapping[str, str], profile: str | None) -> MultipartSettings:
    """The `s3` settings of `profile` (else AWS_DEFAULT_PROFILE, else `default`) from
    AWS_CONFIG_FILE (~/.aws/config) and AWS_SHARED_CREDENTIALS_FILE (~/.aws/credentials).

    A missing file or profile gives the CLI's defaults; a file the CLI can't parse or a
    bad size is a ConfigError.
    """
    name = profile or environ.get("AWS_DEFAULT_PROFILE") or "default"
    config = config_file(environ, "AWS_CONFIG_FILE", "~/.aws/config")
    credentials = config_file(environ, "AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials")
    section: dict[str, object] = {}
    source = config
    for key, values in parse_file(config).items():
        if profile_name(key) == name:
            section = values
    if name in (creds := parse_file(credentials)):
        section = {**section, **creds[name]}
        if "s3" in creds[name]:
            source = credentials
    return settings_from(section.get("s3"), f"{source} [profile {name}]")


def profile_name(section: str) -> str | None:
    """botocore's build_profile_map: `default`, or `profile NAME` (shell-quoted)."""
    if section == "default":
        return section
    if not section.startswith("profile"):
        return None
    try:
        parts = shlex.split(section)
    except ValueError:
        return None
    return parts[1] if len(parts) == 2 else None


def config_file(environ: Mapping[str, str], variable: str, default: str) -> Path:
    """The file a variable names, with `$VAR` and `~` expanded from `environ`."""
    text = environ.get(variable) or default

    def expand(match: re.Match[str]) -> str:
        var = match.group(1).strip("{}")
        return environ.get(var, match.group(0))

    text = _VAR.sub(expand, text)
    if text.startswith("~") and environ.get("HOME") and text[1:2] in ("", "/"):
        return Path(environ["HOME"] + text[1:])
    return Path(os.path.expanduser(text))


def parse_file(path: Path) -> dict[str, dict[str, object]]:
    """botocore's raw_config_parse: sections of options, an indented value (starting
    with a newline) parsed as `key = value` lines; nothing for a missing file."""
    if not path.is_file():
        return {}
    parser = configparser.RawConfigParser()
    try:
        parser.read([path])
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: the AWS CLI cannot parse it: {exc}") from None
    parsed: dict[str, dict[str, object]] = {}
    for section in parser.sections():
        values: dict[str, object] = {}
        for option in parser.options(section):
            value = parser.get(section, option)
            if value.startswith("\n"):
                value = _nested(path, section, option, value)
            values[option] = value
        parsed[section] = values
    return parsed


def _nested(path: Path, section: str, option: str, text: str) -> dict[str, str]:
    nested: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        key, equals, value = line.strip().partition("=")
        if not equals:
            raise ConfigError(f"{path} [{section}] {option}: {line.strip()!r} is not `key = value`")
        nested[key.strip()] = value.strip()
    return nested
