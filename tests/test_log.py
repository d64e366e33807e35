"""Log lines: the spec's text format unchanged, and --log-format json for log shippers."""

from __future__ import annotations

import io
import json
import logging
import re
from pathlib import Path

import pytest
from helpers import Moto, run_cli, write

from awscli_uploader.ops.log import JsonFormatter, _Formatter

TEXT_LINE = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] (INFO|WARN|ERROR|DEBUG) .+$")


def _format(formatter: logging.Formatter, level: int, extra: dict[str, object]) -> str:
    stream = io.StringIO()
    logger = logging.getLogger(f"log-test.{id(formatter)}.{level}")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.log(level, "s3://%s/%s: uploaded", "b-1", "k", extra=extra)
    return stream.getvalue().rstrip("\n")


@pytest.mark.parametrize(
    ("level", "name"),
    [(logging.DEBUG, "DEBUG"), (logging.INFO, "INFO"), (logging.WARNING, "WARN"),
     (logging.ERROR, "ERROR"), (logging.CRITICAL, "ERROR")],
)  # fmt: skip
def test_level_names_in_both_formats(level: int, name: str) -> None:
    extra = {"bucket": "b-1", "key": "k", "bytes": 3}
    text = _format(_Formatter(), level, extra)
    assert TEXT_LINE.match(text)
    assert text.endswith(f"] {name} s3://b-1/k: uploaded")  # extra fields never in the text
    data = json.loads(_format(JsonFormatter(), level, extra))
    assert data["level"] == name
    assert data["message"] == "s3://b-1/k: uploaded"
    assert (data["bucket"], data["key"], data["bytes"]) == ("b-1", "k", 3)
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", data["time"])


def test_json_without_fields_has_only_the_three() -> None:
    data = json.loads(_format(JsonFormatter(), logging.INFO, {}))
    assert set(data) == {"time", "level", "message"}


@pytest.mark.slow
def test_json_log_lines_from_a_real_run(root: Path, moto: Moto, one_cli: str) -> None:
    moto.create_bucket("bucket-one")
    write(root / "bucket-one" / "dir" / "ünï.txt", b"12345")
    kept = write(root / "missing-bucket" / "kept.txt", b"kept")
    result = run_cli(
        "--once",
        "-d",
        str(root),
        "--endpoint-url",
        moto.url,
        "--aws-cli",
        one_cli,
        "--log-format",
        "json",
    )
    assert result.returncode == 1  # --once and a file failed: it stays
    assert kept.read_bytes() == b"kept"
    lines = [json.loads(line) for line in result.stdout.splitlines()]  # every line is JSON
    uploaded = [line for line in lines if line.get("key") == "dir/ünï.txt"]
    assert uploaded == [
        {
            "time": uploaded[0]["time"],
            "level": "INFO",
            "message": "s3://bucket-one/dir/ünï.txt: uploaded 5 bytes, verified, deleted",
            "bucket": "bucket-one",
            "key": "dir/ünï.txt",
            "bytes": 5,
        }
    ]
    failed = [line for line in lines if line.get("bucket") == "missing-bucket"]
    assert failed[0]["level"] == "ERROR"
    assert "cannot list" in failed[0]["message"]
    assert lines[-1]["message"].startswith("scan: uploaded 1 ")


def test_text_is_the_default(root: Path, moto: Moto) -> None:
    """Text lines, and through a pipe no progress line (tests/test_progress.py draws it on
    a terminal)."""
    moto.create_bucket("bucket-one")
    write(root / "bucket-one" / "a.bin", b"a" * 1000)
    result = run_cli("--once", "-d", str(root), "--endpoint-url", moto.url)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "] INFO scan: uploaded 1 " in lines[-1]
    assert [line for line in lines if not TEXT_LINE.match(line)] == []
    assert "\r" not in result.stdout
    assert "files" not in result.stdout
    assert "\x1b" not in result.stdout
