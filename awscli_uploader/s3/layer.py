"""More requests in flight for `aws s3 cp` of many small files, with every setting of the
user's profile kept: a private credentials file layered over the profile.

The CLI takes `max_concurrent_requests` only from the profile's nested `s3` key (no flag,
no environment variable). botocore builds each profile from the config file, then merges
the credentials file's `[NAME]` section over it key by key (Session.full_config), so a
nested `s3` there replaces the profile's whole `s3`. The layer is therefore the user's
credentials file as botocore parses it, with one change: the profile's section gets an
`s3` that holds the profile's own `s3` settings plus `max_concurrent_requests`.
AWS_CONFIG_FILE stays the user's own file, read live by the CLI (region, role_arn and
source_profile, SSO, credential_process, endpoint_url, ca_bundle, services...); the
layer is written afresh for each upload call (credentials rotated meanwhile are read
again) in a private runtime directory, never on the data root (s3/layer_dir.py), and
removed after it. It is written only when it parses back to exactly the user's
sections with that one change; a profile whose `s3` sets `max_concurrent_requests` gets
none (the user's value wins), nor does a named profile that exists nowhere (the CLI says
so itself).
"""

from __future__ import annotations

import configparser
import contextlib
import io
import itertools
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from ..errors import ConfigError
from .layer_dir import layer_name, opened
from .settings import config_file, parse_file, profile_name

CLI_DEFAULT = 10  # the CLI's own max_concurrent_requests
DEFAULT_CONCURRENCY = 64  # measured: README, Transfer settings
KEY = "max_concurrent_requests"
_CALLS = itertools.count()
# A file the CLI can't read or parse as botocore would: no layer, the CLI's default.
_UNREADABLE = (ConfigError, OSError, configparser.Error, UnicodeDecodeError)


def concurrency_for(small_files: int, wanted: int) -> int | None:
    """The requests in flight to ask for an upload call of `small_files` files below the
    multipart threshold: `wanted`, but never more than there are such files nor fewer
    than the CLI's default unless `wanted` is fewer; None: the CLI's default, no layer."""
    value = min(wanted, max(CLI_DEFAULT, small_files))
    return None if value == CLI_DEFAULT else value


def profile_s3(
    config: Mapping[str, Mapping[str, object]],
    credentials: Mapping[str, Mapping[str, object]],
    name: str,
) -> Mapping[str, object] | None:
    """The `s3` settings the CLI uses for profile `name`, or None when the profile exists
    nowhere (and is not `default`)."""
    section: dict[str, object] = {}
    found = name == "default"
    for key, values in config.items():
        if profile_name(key) == name:
            section, found = dict(values), True
    if name in credentials:
        section, found = {**section, **credentials[name]}, True
    if not found:
        return None
    s3 = section.get("s3", {})
    return s3 if isinstance(s3, Mapping) else None


def _files(environ: Mapping[str, str]) -> tuple[Path, Path]:
    """The user's config and credentials files, as the CLI finds them."""
    return (
        config_file(environ, "AWS_CONFIG_FILE", "~/.aws/config"),
        config_file(environ, "AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials"),
    )


def _name(environ: Mapping[str, str], profile: str | None) -> str:
    return profile or environ.get("AWS_DEFAULT_PROFILE") or "default"


def layered_text(environ: Mapping[str, str], profile: str | None, concurrency: int) -> str | None:
    """The layer's text, or None when there is to be none (see the module's docstring)."""
    name = _name(environ, profile)
    config_path, credentials = _files(environ)
    try:
        config, creds = parse_file(config_path), parse_file(credentials)
        raw = _raw_sections(credentials)
    except _UNREADABLE:
        return None
    s3 = profile_s3(config, creds, name)
    if s3 is None or KEY in s3:
        return None
    nested = {**s3, KEY: str(concurrency)}
    raw.setdefault(name, {})["s3"] = "\n" + "\n".join(f"{k} = {v}" for k, v in nested.items())
    return _render(raw)


def faithful(path: Path, environ: Mapping[str, str], profile: str | None, concurrency: int) -> bool:
    """Whether the layer at `path` parses to exactly the user's credentials file with the
    profile's `s3` plus `max_concurrent_requests`, as botocore would parse both."""
    name = _name(environ, profile)
    try:
        config, creds = (parse_file(p) for p in _files(environ))
        layer = parse_file(path)
    except _UNREADABLE:
        return False
    nested = {**(profile_s3(config, creds, name) or {}), KEY: str(concurrency)}
    return layer == {**creds, name: {**creds.get(name, {}), "s3": nested}}


def _raw_sections(path: Path) -> dict[str, dict[str, str]]:
    """Every section's options as the parser holds them (a nested value as its text)."""
    if not path.is_file():
        return {}
    parser = configparser.RawConfigParser()
    parser.read([path])
    return {s: {o: parser.get(s, o) for o in parser.options(s)} for s in parser.sections()}


def _render(sections: Mapping[str, Mapping[str, str]]) -> str:
    parser = configparser.RawConfigParser()
    parser.read_dict(sections)
    out = io.StringIO()
    parser.write(out)
    return out.getvalue()


@contextlib.contextmanager
def layer_env(
    directory: Path | None,
    environ: Mapping[str, str],
    profile: str | None,
    concurrency: int | None,
) -> Iterator[dict[str, str]]:
    """The environment that points the CLI at a layer asking for `concurrency` requests in
    flight, written in the private `directory` for the call and removed after it; {} when
    there is to be no layer, the directory is not private (s3/layer_dir.py) or the layer
    can't be written (the call then runs with the CLI's default)."""
    if directory is None or concurrency is None:
        yield {}
        return
    text = layered_text(environ, profile, concurrency)
    if text is None:
        yield {}
        return
    path = directory / layer_name(os.getpid(), next(_CALLS))
    if not _write(directory, path.name, text):
        yield {}
        return
    if not faithful(path, environ, profile, concurrency):
        path.unlink(missing_ok=True)
        yield {}
        return
    try:
        yield {"AWS_SHARED_CREDENTIALS_FILE": str(path)}
    finally:
        path.unlink(missing_ok=True)


def _write(directory: Path, name: str, text: str) -> bool:
    """Write the layer as `name` in the private `directory`; False (and nothing left) when
    the directory is not private or the file can't be written."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        with opened(directory) as parent:
            fd = os.open(name, flags, 0o600, dir_fd=parent)
            try:
                with os.fdopen(fd, "w") as handle:
                    handle.write(text)
            except OSError:
                with contextlib.suppress(OSError):
                    os.unlink(name, dir_fd=parent)
                return False
    except OSError:
        return False
    return True
