"""Name rules: bucket names, keys, and names safe for a log line."""

from __future__ import annotations

import pytest

from awscli_uploader.names import bucket_name_problem, display, key_problem


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("distributed-colony", True),
        ("abc", True),
        ("a.b-c.1", True),
        ("a" * 63, True),
        ("distributed_colony", False),
        ("ab", False),
        ("a" * 64, False),
        ("Upper", False),
        ("-start", False),
        ("end-", False),
        ("a..b", False),
        ("192.168.1.1", False),
        ("xn--abc", False),
        ("name-s3alias", False),
        (".awscli", False),
    ],
)
def test_bucket_names(name: str, valid: bool) -> None:
    assert (bucket_name_problem(name) is None) is valid


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("images/shot 1.png", None),
        ("a+b%c#d[e]*f?.txt", None),
        ("ünïcødé/雪.txt", None),
        ("x" * 1024, None),
        ("x" * 1025, "longer than 1024"),
        ("é" * 513, "longer than 1024"),
        ("bad\udcff.bin", "not valid UTF-8"),
        ("line\nbreak", "control characters"),
        ("tab\there", "control characters"),
    ],
)
def test_key_problems(key: str, problem: str | None) -> None:
    found = key_problem(key)
    assert (found is None) if problem is None else (found is not None and problem in found)


def test_display_escapes_what_would_break_a_log_line() -> None:
    assert display("plain name.txt") == "plain name.txt"
    assert "\n" not in display("forged\n[2026] INFO done")
    assert display("bad\udcff") == "bad\\udcff"
