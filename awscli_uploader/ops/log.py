"""Log lines `[YYYY-MM-DD HH:MM:SS] LEVEL message` on stdout, or one JSON object a line."""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone

LOGGER_NAME = "awscli_uploader"
_LEVEL_NAMES = {logging.WARNING: "WARN", logging.CRITICAL: "ERROR"}


class _Formatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("[%(asctime)s] %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        record.levelname = _LEVEL_NAMES.get(record.levelno, record.levelname)
        return super().format(record)


class JsonFormatter(logging.Formatter):
    """`{"time", "level", "message"}` plus `bucket`, `key` and `bytes` when the record has
    them (passed with `extra=`); the time is UTC, ISO 8601 with milliseconds."""

    FIELDS = ("bucket", "key", "bytes")

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, timezone.utc)
        data: dict[str, object] = {
            "time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": _LEVEL_NAMES.get(record.levelno, record.levelname),
            "message": record.getMessage(),
        }
        for name in self.FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                data[name] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


def setup(*, verbose: bool = False, fmt: str = "text") -> logging.Logger:
    """Route the package's logger to stdout, one flushed line per record."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.handlers.clear()
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter() if fmt == "json" else _Formatter())
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False
    return logger


def get() -> logging.Logger:
    return logging.getLogger(LOGGER_NAME)
