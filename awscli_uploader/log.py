"""Log lines `[YYYY-MM-DD HH:MM:SS] LEVEL message` on stdout."""

from __future__ import annotations

import logging
import sys

LOGGER_NAME = "awscli_uploader"
_LEVEL_NAMES = {logging.WARNING: "WARN", logging.CRITICAL: "ERROR"}


class _Formatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("[%(asctime)s] %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        record.levelname = _LEVEL_NAMES.get(record.levelno, record.levelname)
        return super().format(record)


def setup(*, verbose: bool = False) -> logging.Logger:
    """Route the package's logger to stdout, one flushed line per record."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.handlers.clear()
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_Formatter())
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False
    return logger


def get() -> logging.Logger:
    return logging.getLogger(LOGGER_NAME)
