"""Name rules, the leaf of the package: valid bucket names and keys, and safe display."""

from __future__ import annotations

import ipaddress
import os
import re

MAX_KEY_BYTES = 1024
_BUCKET_CHARS = re.compile(r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$")


def display(name: str | os.PathLike[str]) -> str:
    """A name safe for one log line: control characters and bad UTF-8 are escaped."""
    text = os.fspath(name)
    if text.isprintable():
        return text
    return ascii(text)[1:-1] if has_surrogates(text) else repr(text)[1:-1]


def has_surrogates(text: str) -> bool:
    """Whether `text` holds bytes that were not valid UTF-8 (surrogate escapes)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def bucket_name_problem(name: str) -> str | None:
    """Why S3 would refuse `name` as a bucket name, or None when it is valid."""
    if not 3 <= len(name) <= 63:
        return "must be 3 to 63 characters long"
    if not _BUCKET_CHARS.match(name):
        return (
            "may contain only lowercase letters, digits, '.' and '-', "
            "and must start and end with a letter or digit"
        )
    if ".." in name:
        return "must not contain two adjacent periods"
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        pass
    else:
        return "must not be formatted as an IP address"
    if name.startswith(("xn--", "sthree-")) or name.endswith(("-s3alias", "--ol-s3")):
        return "uses a prefix or suffix that S3 reserves"
    return None


CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # control characters


def key_problem(key: str) -> str | None:
    """Why `key` can't be uploaded as given, or None."""
    if has_surrogates(key):
        return "name is not valid UTF-8"
    if CONTROL.search(key):
        return "name contains control characters"
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        return f"key is longer than {MAX_KEY_BYTES} bytes in UTF-8"
    return None
